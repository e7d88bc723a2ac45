//! Device tests: the configuration space and activation, and FUSE requests
//! served end to end through hand-laid queues in real guest memory.

use std::path::PathBuf;
use std::sync::Arc;

use fuse_backend_rs::abi::fuse_abi::{
    EntryOut, InHeader, InitIn, InitOut, MkdirIn, Opcode, OpenIn, OpenOut, OutHeader, WriteIn,
    KERNEL_MINOR_VERSION, KERNEL_VERSION, ROOT_ID,
};
use virtio_queue::{Queue, QueueT};
use vm_memory::{Address, ByteValued, Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::event_handler::Worker;
use super::*;
use crate::devices::virtio::{ActivateError, Interrupt, VirtioDevice, FEATURE_VERSION_1};

const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;
const RING_SIZE: u16 = 16;
const REQ_BUF: u64 = 0x10000;
const REPLY_BUF: u64 = 0x20000;
const BUF_LEN: u32 = 0x4000;
const HDR_LEN: usize = std::mem::size_of::<OutHeader>();

/// A fresh directory under the system temp dir.
pub(super) fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hull-fs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap()
}

/// A split virtqueue at `base`: descriptors, then avail ring, then used ring.
struct Ring {
    base: u64,
}

impl Ring {
    fn queue(&self) -> Queue {
        let mut q = Queue::new(RING_SIZE).unwrap();
        q.set_size(RING_SIZE);
        let lo_hi = |a: u64| (Some(a as u32), Some((a >> 32) as u32));
        let (l, h) = lo_hi(self.base);
        q.set_desc_table_address(l, h);
        let (l, h) = lo_hi(self.base + 0x400);
        q.set_avail_ring_address(l, h);
        let (l, h) = lo_hi(self.base + 0x800);
        q.set_used_ring_address(l, h);
        q.set_ready(true);
        q
    }

    /// Lays out `descs` (addr, len, flags) as one chain and makes it available.
    fn post(&self, m: &GuestMemoryMmap, descs: &[(u64, u32, u16)]) {
        let avail_idx: u16 = m.read_obj(GuestAddress(self.base + 0x402)).unwrap();
        let first = avail_idx.wrapping_mul(4) % RING_SIZE;
        for (i, &(addr, len, flags)) in descs.iter().enumerate() {
            let slot = (first + i as u16) % RING_SIZE;
            let last = i + 1 == descs.len();
            let flags = if last { flags } else { flags | F_NEXT };
            let at = GuestAddress(self.base + 16 * u64::from(slot));
            m.write_obj(addr, at).unwrap();
            m.write_obj(len, at.unchecked_add(8)).unwrap();
            m.write_obj(flags, at.unchecked_add(12)).unwrap();
            m.write_obj((slot + 1) % RING_SIZE, at.unchecked_add(14))
                .unwrap();
        }
        let ring_slot = self.base + 0x404 + 2 * u64::from(avail_idx % RING_SIZE);
        m.write_obj(first, GuestAddress(ring_slot)).unwrap();
        m.write_obj(avail_idx.wrapping_add(1), GuestAddress(self.base + 0x402))
            .unwrap();
    }

    fn used_idx(&self, m: &GuestMemoryMmap) -> u16 {
        m.read_obj(GuestAddress(self.base + 0x802)).unwrap()
    }

    /// The length of used entry `i`.
    fn used_len(&self, m: &GuestMemoryMmap, i: u16) -> u32 {
        let slot = self.base + 0x804 + 8 * u64::from(i % RING_SIZE);
        m.read_obj(GuestAddress(slot + 4)).unwrap()
    }
}

/// A FUSE request: header then `body`.
fn request(opcode: Opcode, nodeid: u64, unique: u64, body: &[u8]) -> Vec<u8> {
    let hdr = InHeader {
        len: (std::mem::size_of::<InHeader>() + body.len()) as u32,
        opcode: opcode as u32,
        unique,
        nodeid,
        ..Default::default()
    };
    let mut out = hdr.as_slice().to_vec();
    out.extend_from_slice(body);
    out
}

fn name(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// The guest side: both queues laid out by hand and the worker run inline.
struct Guest {
    mem: GuestMemoryMmap,
    req: Ring,
    worker: Worker,
    served: u16,
    unique: u64,
}

impl Guest {
    fn new(config: &FsConfig) -> Self {
        let mem = mem();
        let hiprio = Ring { base: 0 };
        let req = Ring { base: 0x1000 };
        let server = Arc::new(fuse_backend_rs::api::server::Server::new(Arc::new(
            ShareFs::new(config).unwrap(),
        )));
        let worker = Worker::new(
            mem.clone(),
            Arc::new(Interrupt::new().unwrap()),
            vec![hiprio.queue(), req.queue()],
            server,
            Arc::new(EventFd::new(EFD_NONBLOCK).unwrap()),
            Arc::new(EventFd::new(EFD_NONBLOCK).unwrap()),
            Arc::new(FsStats::default()),
        )
        .unwrap();
        let mut guest = Self {
            mem,
            req,
            worker,
            served: 0,
            unique: 0,
        };
        let init = InitIn {
            major: KERNEL_VERSION,
            minor: KERNEL_MINOR_VERSION,
            max_readahead: 0x20000,
            flags: 0,
        };
        let (hdr, body) = guest.call(Opcode::Init, ROOT_ID, init.as_slice());
        assert_eq!(hdr.error, 0);
        let out = InitOut::from_slice(&body[..std::mem::size_of::<InitOut>()]).unwrap();
        assert_eq!(
            (out.major, out.minor),
            (KERNEL_VERSION, KERNEL_MINOR_VERSION)
        );
        guest
    }

    /// Posts `descs` as one chain, serves it; returns the used length.
    fn raw(&mut self, descs: &[(u64, u32, u16)]) -> u32 {
        self.req.post(&self.mem, descs);
        self.worker.process();
        assert_eq!(self.req.used_idx(&self.mem), self.served + 1, "chain used");
        self.served += 1;
        self.req.used_len(&self.mem, self.served - 1)
    }

    /// Sends one request; returns the reply header and body.
    fn call(&mut self, opcode: Opcode, nodeid: u64, body: &[u8]) -> (OutHeader, Vec<u8>) {
        self.unique += 1;
        let msg = request(opcode, nodeid, self.unique, body);
        self.mem.write_slice(&msg, GuestAddress(REQ_BUF)).unwrap();
        let len = msg.len() as u32;
        let used = self.raw(&[(REQ_BUF, len, 0), (REPLY_BUF, BUF_LEN, F_WRITE)]);
        let mut reply = vec![0u8; used as usize];
        self.mem
            .read_slice(&mut reply, GuestAddress(REPLY_BUF))
            .unwrap();
        let hdr = *OutHeader::from_slice(&reply[..HDR_LEN]).unwrap();
        assert_eq!(hdr.unique, self.unique);
        assert_eq!(hdr.len, used, "used length is the reply length");
        (hdr, reply[HDR_LEN..].to_vec())
    }

    fn lookup(&mut self, parent: u64, n: &str) -> Result<EntryOut, i32> {
        let (hdr, body) = self.call(Opcode::Lookup, parent, &name(n));
        match hdr.error {
            0 => Ok(*EntryOut::from_slice(&body[..std::mem::size_of::<EntryOut>()]).unwrap()),
            e => Err(-e),
        }
    }

    fn bad(&self) -> u64 {
        FsStats::get(&self.worker.stats.bad_requests)
    }
}

fn share(name: &str, readonly: bool) -> (PathBuf, FsConfig) {
    let dir = tempdir(name);
    std::fs::write(dir.join("hello.txt"), b"hello").unwrap();
    let config = FsConfig::new("share", &dir, readonly).unwrap();
    (dir, config)
}

#[test]
fn config_space_features_and_queue_count() {
    let (dir, config) = share("config", false);
    let mut dev = Fs::new(config).unwrap();
    assert_eq!(dev.device_type(), 26);
    assert_eq!(dev.avail_features(), FEATURE_VERSION_1);
    assert_eq!(dev.queue_max_sizes(), &[QUEUE_SIZE, QUEUE_SIZE]);
    let mut cfg = [0xffu8; CONFIG_SPACE_LEN];
    dev.read_config(0, &mut cfg);
    assert_eq!(&cfg[..5], b"share");
    assert!(cfg[5..TAG_LEN].iter().all(|&b| b == 0), "tag is NUL-padded");
    assert_eq!(u32::from_le_bytes(cfg[TAG_LEN..].try_into().unwrap()), 1);
    let mut queues = [0u8; 4];
    dev.read_config(TAG_LEN as u64, &mut queues);
    assert_eq!(queues, 1u32.to_le_bytes());
    let mut past = [0u8; 4];
    dev.read_config(38, &mut past);
    assert_eq!(past, [0; 4], "out-of-range config reads stay zero");
    dev.read_config(u64::MAX, &mut past);
    dev.write_config(0, b"evil");
    dev.read_config(0, &mut queues);
    assert_eq!(&queues, b"shar", "config space is read-only");

    let m = mem();
    let irq = Arc::new(Interrupt::new().unwrap());
    let one = vec![Ring { base: 0 }.queue()];
    assert!(matches!(
        dev.activate(m.clone(), Arc::clone(&irq), one),
        Err(ActivateError::QueueCount {
            expected: 2,
            got: 1
        })
    ));
    let two = vec![Ring { base: 0 }.queue(), Ring { base: 0x1000 }.queue()];
    dev.activate(m.clone(), Arc::clone(&irq), two).unwrap();
    let again = vec![Ring { base: 0 }.queue(), Ring { base: 0x1000 }.queue()];
    assert!(matches!(
        dev.activate(m, irq, again),
        Err(ActivateError::AlreadyActive)
    ));
    assert!(dev.reset(), "reset stops and joins the thread");
    drop(dev);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn device_thread_serves_a_kick_and_interrupts() {
    let (dir, config) = share("thread", false);
    let mut dev = Fs::new(config).unwrap();
    let m = mem();
    let req = Ring { base: 0x1000 };
    let init = InitIn {
        major: KERNEL_VERSION,
        minor: KERNEL_MINOR_VERSION,
        ..Default::default()
    };
    let msg = request(Opcode::Init, ROOT_ID, 7, init.as_slice());
    m.write_slice(&msg, GuestAddress(REQ_BUF)).unwrap();
    let irq = Arc::new(Interrupt::new().unwrap());
    let queues = vec![Ring { base: 0 }.queue(), req.queue()];
    dev.activate(m.clone(), Arc::clone(&irq), queues).unwrap();
    req.post(
        &m,
        &[
            (REQ_BUF, msg.len() as u32, 0),
            (REPLY_BUF, BUF_LEN, F_WRITE),
        ],
    );
    dev.queue_notify(REQUEST_QUEUE as u32);
    let mut pfd = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(irq.eventfd()),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut pfd, 1, 10_000) };
    assert_eq!(n, 1, "the device thread interrupted the guest");
    assert_eq!(req.used_idx(&m), 1);
    let hdr: OutHeader = m.read_obj(GuestAddress(REPLY_BUF)).unwrap();
    assert_eq!((hdr.error, hdr.unique), (0, 7));
    assert_eq!(FsStats::get(&dev.stats().requests), 1);
    assert!(dev.reset());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn lookup_through_the_queue() {
    let (dir, config) = share("lookup", false);
    let mut g = Guest::new(&config);
    let entry = g.lookup(ROOT_ID, "hello.txt").unwrap();
    assert_ne!(entry.nodeid, ROOT_ID);
    assert_eq!(entry.attr.size, 5);
    assert_eq!(entry.attr.mode & libc::S_IFMT, libc::S_IFREG);
    assert_eq!(entry.attr_valid, ATTR_TIMEOUT_SECS);
    assert_eq!(g.lookup(ROOT_ID, "missing").err(), Some(libc::ENOENT));
    assert_eq!(g.lookup(ROOT_ID, "a/hello.txt").err(), Some(libc::EINVAL));
    assert_eq!(g.bad(), 0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn malformed_chains_are_counted_not_served() {
    let (dir, config) = share("malformed", false);
    let mut g = Guest::new(&config);
    let msg = request(Opcode::Lookup, ROOT_ID, 99, &name("hello.txt"));
    g.mem.write_slice(&msg, GuestAddress(REQ_BUF)).unwrap();
    let len = msg.len() as u32;
    // Header cut short.
    assert_eq!(g.raw(&[(REQ_BUF, 10, 0), (REPLY_BUF, BUF_LEN, F_WRITE)]), 0);
    assert_eq!(g.bad(), 1);
    // Request in a device-writable descriptor: nothing to read.
    assert_eq!(g.raw(&[(REQ_BUF, len, F_WRITE)]), 0);
    assert_eq!(g.bad(), 2);
    // Buffers outside guest memory.
    assert_eq!(
        g.raw(&[(0xfff_0000, len, 0), (REPLY_BUF, BUF_LEN, F_WRITE)]),
        0
    );
    assert_eq!(
        g.raw(&[(REQ_BUF, len, 0), (0xfff_0000, BUF_LEN, F_WRITE)]),
        0
    );
    assert_eq!(g.bad(), 4);
    // A good request with no room for the reply.
    assert_eq!(g.raw(&[(REQ_BUF, len, 0)]), 0);
    assert_eq!(g.raw(&[(REQ_BUF, len, 0), (REPLY_BUF, 8, F_WRITE)]), 0);
    assert_eq!(g.bad(), 6);
    let (hdr, _) = g.call(Opcode::Lookup, ROOT_ID, &name("hello.txt"));
    assert_eq!(hdr.error, 0, "the device still serves after bad chains");
    // An unknown opcode gets ENOSYS, not a drop.
    g.unique += 1;
    let mut odd = request(Opcode::Lookup, ROOT_ID, g.unique, &[]);
    odd[4..8].copy_from_slice(&9999u32.to_le_bytes());
    g.mem.write_slice(&odd, GuestAddress(REQ_BUF)).unwrap();
    let used = g.raw(&[
        (REQ_BUF, odd.len() as u32, 0),
        (REPLY_BUF, BUF_LEN, F_WRITE),
    ]);
    let hdr: OutHeader = g.mem.read_obj(GuestAddress(REPLY_BUF)).unwrap();
    assert_eq!((used as usize, hdr.error), (HDR_LEN, -libc::ENOSYS));
    std::fs::remove_dir_all(dir).unwrap();
}

fn write_in(fh: u64, size: u32) -> WriteIn {
    WriteIn {
        fh,
        size,
        ..Default::default()
    }
}

#[test]
fn readonly_share_refuses_writes_through_the_queue() {
    let (dir, config) = share("ro-queue", true);
    let mut g = Guest::new(&config);
    let file = g.lookup(ROOT_ID, "hello.txt").unwrap().nodeid;
    let open = |flags: i32| OpenIn {
        flags: flags as u32,
        fuse_flags: 0,
    };
    let (hdr, body) = g.call(Opcode::Open, file, open(libc::O_RDONLY).as_slice());
    assert_eq!(hdr.error, 0, "read-only opens work");
    let fh = OpenOut::from_slice(&body[..16]).unwrap().fh;
    for flags in [libc::O_WRONLY, libc::O_RDWR, libc::O_RDONLY | libc::O_TRUNC] {
        let (hdr, _) = g.call(Opcode::Open, file, open(flags).as_slice());
        assert_eq!(hdr.error, -libc::EROFS, "open flags {flags:#x}");
    }
    let mut body = write_in(fh, 3).as_slice().to_vec();
    body.extend_from_slice(b"bad");
    let (hdr, _) = g.call(Opcode::Write, file, &body);
    assert_eq!(hdr.error, -libc::EROFS);
    let mut mkdir = MkdirIn {
        mode: 0o755,
        umask: 0,
    }
    .as_slice()
    .to_vec();
    mkdir.extend_from_slice(&name("newdir"));
    let (hdr, _) = g.call(Opcode::Mkdir, ROOT_ID, &mkdir);
    assert_eq!(hdr.error, -libc::EROFS);
    let (hdr, _) = g.call(Opcode::Unlink, ROOT_ID, &name("hello.txt"));
    assert_eq!(hdr.error, -libc::EROFS);
    assert_eq!(std::fs::read(dir.join("hello.txt")).unwrap(), b"hello");
    assert!(!dir.join("newdir").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn writable_share_writes_reach_the_host() {
    let (dir, config) = share("rw-queue", false);
    let mut g = Guest::new(&config);
    let file = g.lookup(ROOT_ID, "hello.txt").unwrap().nodeid;
    let open = OpenIn {
        flags: libc::O_WRONLY as u32,
        fuse_flags: 0,
    };
    let (hdr, body) = g.call(Opcode::Open, file, open.as_slice());
    assert_eq!(hdr.error, 0);
    let fh = OpenOut::from_slice(&body[..16]).unwrap().fh;
    let mut body = write_in(fh, 3).as_slice().to_vec();
    body.extend_from_slice(b"HEL");
    let (hdr, _) = g.call(Opcode::Write, file, &body);
    assert_eq!(hdr.error, 0);
    assert_eq!(std::fs::read(dir.join("hello.txt")).unwrap(), b"HELlo");
    std::fs::remove_dir_all(dir).unwrap();
}
