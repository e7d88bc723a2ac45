//! In-process tests: hand-laid queues in real guest memory, the worker
//! driven inline, a datagram socket pair standing in for the tap.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

use virtio_queue::mock::MockSplitQueue;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::epoll::{EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::device::AVAIL_FEATURES;
use super::event_handler::Worker;
use super::tap::tun_offload_flags;
use super::*;
use crate::devices::virtio::{Interrupt, VirtioDevice, FEATURE_RING_EVENT_IDX, FEATURE_VERSION_1};

pub(super) const F_NEXT: u16 = 1;
pub(super) const F_WRITE: u16 = 2;
const RING_SIZE: u16 = 16;
const RX_BUF: u64 = 0x10000;
const TX_BUF: u64 = 0x80000;
const BUF_LEN: u32 = 1000;
const HDR: usize = VNET_HDR_LEN_BYTES;

pub(super) fn mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x20_0000)]).unwrap()
}

/// The fake tap: frames go through a datagram socket pair.
struct Fake {
    sock: UnixDatagram,
    full: Arc<AtomicBool>,
    reads: Arc<AtomicUsize>,
    offload: Arc<AtomicU32>,
}

impl AsRawFd for Fake {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl NetBackend for Fake {
    fn read_frame(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.sock.recv(buf)?;
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(n)
    }
    fn write_frame(&mut self, frame: &[u8]) -> io::Result<usize> {
        if self.full.load(Ordering::SeqCst) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.sock.send(frame)
    }
    fn set_offload(&mut self, tun_flags: u32) -> io::Result<()> {
        self.offload.store(tun_flags, Ordering::SeqCst);
        Ok(())
    }
}

struct Peer {
    sock: UnixDatagram,
    full: Arc<AtomicBool>,
    reads: Arc<AtomicUsize>,
    offload: Arc<AtomicU32>,
}

fn fake() -> (Box<dyn NetBackend>, Peer) {
    let (a, b) = UnixDatagram::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let full = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let offload = Arc::new(AtomicU32::new(u32::MAX));
    let f = Fake {
        sock: a,
        full: Arc::clone(&full),
        reads: Arc::clone(&reads),
        offload: Arc::clone(&offload),
    };
    let peer = Peer {
        sock: b,
        full,
        reads,
        offload,
    };
    (Box::new(f), peer)
}

/// A split virtqueue laid out by the test.
pub(super) struct Ring {
    pub(super) base: u64,
}

impl Ring {
    fn desc(&self) -> u64 {
        self.base
    }
    fn avail(&self) -> u64 {
        self.base + 0x400
    }
    fn used(&self) -> u64 {
        self.base + 0x800
    }

    pub(super) fn queue(&self, event_idx: bool) -> Queue {
        let mut q = Queue::new(RING_SIZE).unwrap();
        q.set_size(RING_SIZE);
        let lo_hi = |a: u64| (Some(a as u32), Some((a >> 32) as u32));
        let (l, h) = lo_hi(self.desc());
        q.set_desc_table_address(l, h);
        let (l, h) = lo_hi(self.avail());
        q.set_avail_ring_address(l, h);
        let (l, h) = lo_hi(self.used());
        q.set_used_ring_address(l, h);
        q.set_event_idx(event_idx);
        q.set_ready(true);
        q
    }

    pub(super) fn set_desc(
        &self,
        m: &GuestMemoryMmap,
        i: u16,
        addr: u64,
        len: u32,
        flags: u16,
        next: u16,
    ) {
        let at = self.desc() + 16 * u64::from(i % RING_SIZE);
        m.write_obj(addr, GuestAddress(at)).unwrap();
        m.write_obj(len, GuestAddress(at + 8)).unwrap();
        m.write_obj(flags, GuestAddress(at + 12)).unwrap();
        m.write_obj(next % RING_SIZE, GuestAddress(at + 14))
            .unwrap();
    }

    pub(super) fn publish(&self, m: &GuestMemoryMmap, head: u16) {
        let idx: u16 = m.read_obj(GuestAddress(self.avail() + 2)).unwrap();
        let slot = self.avail() + 4 + 2 * u64::from(idx % RING_SIZE);
        m.write_obj(head % RING_SIZE, GuestAddress(slot)).unwrap();
        m.write_obj(idx.wrapping_add(1), GuestAddress(self.avail() + 2))
            .unwrap();
    }

    pub(super) fn used_idx(&self, m: &GuestMemoryMmap) -> u16 {
        m.read_obj(GuestAddress(self.used() + 2)).unwrap()
    }

    /// (id, len) of used entry `i`.
    pub(super) fn used_elem(&self, m: &GuestMemoryMmap, i: u16) -> (u32, u32) {
        let slot = self.used() + 4 + 8 * u64::from(i % RING_SIZE);
        (
            m.read_obj(GuestAddress(slot)).unwrap(),
            m.read_obj(GuestAddress(slot + 4)).unwrap(),
        )
    }

    /// `avail_event`, written by the device under EVENT_IDX.
    fn avail_event(&self, m: &GuestMemoryMmap) -> u16 {
        m.read_obj(GuestAddress(self.used() + 4 + 8 * u64::from(RING_SIZE)))
            .unwrap()
    }
}

/// The guest side of an in-process device.
struct Harness<'a> {
    mem: &'a GuestMemoryMmap,
    rx: Ring,
    tx: Ring,
    worker: Worker,
    peer: Peer,
    rx_posted: u16,
    tx_desc: u16,
}

impl<'a> Harness<'a> {
    fn new(mem: &'a GuestMemoryMmap, features: u64) -> Self {
        let event_idx = features & FEATURE_RING_EVENT_IDX != 0;
        let rx = Ring { base: 0 };
        let tx = Ring { base: 0x1000 };
        let queues = vec![rx.queue(event_idx), tx.queue(event_idx)];
        let (backend, peer) = fake();
        let kick = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
        let stop = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
        let irq = Arc::new(Interrupt::new().unwrap());
        let stats = Arc::new(NetStats::default());
        let worker = Worker::new(
            mem.clone(),
            irq,
            queues,
            backend,
            features,
            kick,
            stop,
            stats,
        )
        .unwrap();
        Self {
            mem,
            rx,
            tx,
            worker,
            peer,
            rx_posted: 0,
            tx_desc: 0,
        }
    }

    /// Posts one receive chain of `segs` (flags per segment).
    fn post_rx_chain(&mut self, segs: &[(u32, u16)]) {
        let head = self.rx_posted % RING_SIZE;
        for (k, &(len, flags)) in segs.iter().enumerate() {
            let i = (self.rx_posted + k as u16) % RING_SIZE;
            let addr = RX_BUF + u64::from(i) * 0x1000;
            let more = if k + 1 < segs.len() { F_NEXT } else { 0 };
            self.rx
                .set_desc(self.mem, i, addr, len, flags | more, i + 1);
        }
        self.rx.publish(self.mem, head);
        self.rx_posted += segs.len() as u16;
    }

    /// Posts `n` one-descriptor receive buffers of BUF_LEN bytes.
    fn post_rx(&mut self, n: u16) {
        for _ in 0..n {
            self.post_rx_chain(&[(BUF_LEN, F_WRITE)]);
        }
    }

    /// Publishes one TX chain: (bytes, flags) per descriptor.
    fn send_chain(&mut self, segs: &[(&[u8], u16)]) {
        let head = self.tx_desc % RING_SIZE;
        for (k, (bytes, flags)) in segs.iter().enumerate() {
            let i = (self.tx_desc + k as u16) % RING_SIZE;
            let addr = TX_BUF + u64::from(i) * 0x1000;
            self.mem.write_slice(bytes, GuestAddress(addr)).unwrap();
            let more = if k + 1 < segs.len() { F_NEXT } else { 0 };
            let len = bytes.len() as u32;
            self.tx
                .set_desc(self.mem, i, addr, len, flags | more, i + 1);
        }
        self.tx.publish(self.mem, head);
        self.tx_desc += segs.len() as u16;
    }

    fn process(&mut self) {
        self.worker.process().unwrap();
    }

    /// Bytes of used RX entry `i` (one-descriptor chains only).
    fn rx_used_bytes(&self, i: u16) -> Vec<u8> {
        let (id, len) = self.rx.used_elem(self.mem, i);
        let mut b = vec![0u8; len as usize];
        let addr = RX_BUF + u64::from(id) * 0x1000;
        self.mem.read_slice(&mut b, GuestAddress(addr)).unwrap();
        b
    }

    fn peer_recv(&self) -> Option<Vec<u8>> {
        let mut b = vec![0u8; MAX_FRAME_BYTES];
        match self.peer.sock.recv(&mut b) {
            Ok(n) => Some(b[..n].to_vec()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => panic!("{e}"),
        }
    }

    fn stat(&self, f: impl Fn(&NetStats) -> &std::sync::atomic::AtomicU64) -> u64 {
        NetStats::get(f(&self.worker.stats))
    }
}

/// A frame: vnet header (flags, gso type, num_buffers 0) and `len` bytes of
/// Ethernet frame with a recognisable pattern.
fn frame(flags: u8, len: usize, seed: u8) -> Vec<u8> {
    let mut f = vec![0u8; HDR + len];
    f[0] = flags;
    for (i, b) in f[HDR..].iter_mut().enumerate() {
        *b = seed.wrapping_add(i as u8);
    }
    f
}

#[test]
fn tx_frame_reaches_the_backend_with_its_header() {
    let m = mem();
    let mut g = Harness::new(&m, FEATURE_VERSION_1);
    let mut f = frame(1, 100, 7);
    f[6..8].copy_from_slice(&34u16.to_le_bytes()); // csum_start
    g.send_chain(&[(&f[..HDR], 0), (&f[HDR..], 0)]);
    g.process();
    assert_eq!(g.peer_recv().as_deref(), Some(&f[..]));
    assert_eq!(g.tx.used_idx(&m), 1);
    assert_eq!(g.stat(|s| &s.tx_frames), 1);
    assert_eq!(g.peer_recv(), None, "exactly one frame");
}

#[test]
fn rx_frame_spreads_over_mergeable_buffers_with_num_buffers() {
    let m = mem();
    let mut g = Harness::new(&m, FEATURE_VERSION_1 | F_MRG_RXBUF);
    g.post_rx(4);
    let f = frame(0, 2500, 3);
    g.peer.sock.send(&f).unwrap();
    g.process();
    assert_eq!(g.rx.used_idx(&m), 3, "three buffers for 2512 bytes");
    let lens: Vec<u32> = (0..3).map(|i| g.rx.used_elem(&m, i).1).collect();
    assert_eq!(lens, [1000, 1000, 512]);
    let got: Vec<u8> = (0..3).flat_map(|i| g.rx_used_bytes(i)).collect();
    assert_eq!(u16::from_le_bytes([got[10], got[11]]), 3, "num_buffers");
    assert_eq!(&got[..10], &f[..10]);
    assert_eq!(&got[HDR..], &f[HDR..]);
    assert_eq!(g.stat(|s| &s.rx_frames), 1);

    // A small frame takes the last buffer, num_buffers 1.
    let small = frame(0, 60, 9);
    g.peer.sock.send(&small).unwrap();
    g.process();
    assert_eq!(g.rx.used_idx(&m), 4);
    let got = g.rx_used_bytes(3);
    assert_eq!(u16::from_le_bytes([got[10], got[11]]), 1);
    assert_eq!(&got[HDR..], &small[HDR..]);
}

#[test]
fn without_rx_buffers_one_frame_waits_and_the_tap_is_not_read() {
    let m = mem();
    let mut g = Harness::new(&m, FEATURE_VERSION_1 | F_MRG_RXBUF | FEATURE_RING_EVENT_IDX);
    g.post_rx(1);
    g.peer.sock.send(&frame(0, 100, 0)).unwrap();
    g.process();
    assert_eq!(g.rx.used_idx(&m), 1);
    let frames: Vec<Vec<u8>> = (1..4).map(|i| frame(0, 1500, i)).collect();
    for f in &frames {
        g.peer.sock.send(f).unwrap();
    }
    g.process();
    assert!(g.worker.rx_pending());
    assert_eq!(
        g.peer.reads.load(Ordering::SeqCst),
        2,
        "one frame read, held"
    );
    assert!(!g.worker.tap_interest().contains(EventSet::IN));
    assert_eq!(
        g.rx.avail_event(&m),
        1,
        "asks for a kick at the next buffer"
    );
    assert_eq!(g.stat(|s| &s.rx_dropped_frames), 0);

    // One buffer is not enough for 1512 bytes: nothing is consumed.
    g.post_rx(1);
    g.process();
    assert_eq!(g.rx.used_idx(&m), 1);
    assert!(g.worker.rx_pending());
    assert_eq!(g.peer.reads.load(Ordering::SeqCst), 2);

    // Enough buffers: all three arrive, in order.
    g.post_rx(5);
    g.process();
    assert!(!g.worker.rx_pending());
    assert!(g.worker.tap_interest().contains(EventSet::IN));
    assert_eq!(g.rx.used_idx(&m), 7);
    for (k, f) in frames.iter().enumerate() {
        let i = 1 + 2 * k as u16;
        let got: Vec<u8> = [g.rx_used_bytes(i), g.rx_used_bytes(i + 1)].concat();
        assert_eq!(u16::from_le_bytes([got[10], got[11]]), 2);
        assert_eq!(&got[HDR..], &f[HDR..], "frame {k}");
    }
    assert_eq!(g.stat(|s| &s.rx_frames), 4);
}

#[test]
fn malformed_tx_chains_are_counted_and_dropped() {
    let m = mem();
    let mut g = Harness::new(&m, FEATURE_VERSION_1);
    let good = frame(0, 60, 1);
    g.send_chain(&[(&good, F_WRITE)]); // wrong direction
    g.send_chain(&[(&good[..20], 0)]); // too short
    g.send_chain(&[(&good, 0)]);
    g.process();
    // Too long: a 70000-byte descriptor (not read, only measured).
    let i = g.tx_desc % RING_SIZE;
    g.tx.set_desc(&m, i, TX_BUF, 70_000, 0, 0);
    g.tx.publish(&m, i);
    // Outside guest memory.
    let j = (g.tx_desc + 1) % RING_SIZE;
    g.tx.set_desc(&m, j, 0x1f_ff00, 0x200, 0, 0);
    g.tx.publish(&m, j);
    g.tx_desc += 2;
    g.process();
    assert_eq!(g.tx.used_idx(&m), 5, "every chain is returned");
    assert_eq!(g.stat(|s| &s.tx_bad_chains), 4);
    assert_eq!(g.stat(|s| &s.tx_frames), 1);
    assert_eq!(g.peer_recv().as_deref(), Some(&good[..]));
    assert_eq!(g.peer_recv(), None);
}

#[test]
fn malformed_rx_chains_are_counted_and_returned_empty() {
    let m = mem();
    let mut g = Harness::new(&m, FEATURE_VERSION_1);
    g.post_rx_chain(&[(BUF_LEN, 0)]); // device-readable
    g.post_rx_chain(&[(8, F_WRITE)]); // shorter than the header
    g.post_rx_chain(&[(BUF_LEN, F_WRITE), (BUF_LEN, F_WRITE)]);
    let f = frame(0, 1500, 5);
    g.peer.sock.send(&f).unwrap();
    g.process();
    assert_eq!(g.rx.used_idx(&m), 3);
    assert_eq!(g.rx.used_elem(&m, 0), (0, 0));
    assert_eq!(g.rx.used_elem(&m, 1), (1, 0));
    assert_eq!(g.rx.used_elem(&m, 2), (2, f.len() as u32));
    let mut got = vec![0u8; f.len()];
    m.read_slice(&mut got[..1000], GuestAddress(RX_BUF + 2 * 0x1000))
        .unwrap();
    m.read_slice(&mut got[1000..], GuestAddress(RX_BUF + 3 * 0x1000))
        .unwrap();
    assert_eq!(u16::from_le_bytes([got[10], got[11]]), 1);
    assert_eq!(&got[HDR..], &f[HDR..]);
    assert_eq!(g.stat(|s| &s.rx_bad_chains), 2);
    assert_eq!(g.stat(|s| &s.rx_frames), 1);
}

#[test]
fn without_mergeable_buffers_an_oversized_frame_is_dropped_not_the_buffer() {
    let m = mem();
    let mut g = Harness::new(&m, FEATURE_VERSION_1);
    g.post_rx(1);
    g.peer.sock.send(&frame(0, 2000, 1)).unwrap();
    let small = frame(0, 80, 2);
    g.peer.sock.send(&small).unwrap();
    g.peer.sock.send(&[0u8; 4]).unwrap(); // shorter than a vnet header
    g.process();
    assert_eq!(g.stat(|s| &s.rx_dropped_frames), 2);
    assert_eq!(g.rx.used_idx(&m), 1);
    assert_eq!(&g.rx_used_bytes(0)[HDR..], &small[HDR..]);
}

#[test]
fn tx_eagain_keeps_the_chain_until_the_tap_is_writable() {
    let m = mem();
    let mut g = Harness::new(&m, FEATURE_VERSION_1);
    let f = frame(0, 60, 4);
    g.peer.full.store(true, Ordering::SeqCst);
    g.send_chain(&[(&f, 0)]);
    g.process();
    assert_eq!(g.tx.used_idx(&m), 0, "chain not consumed");
    assert!(g.worker.tx_blocked());
    assert!(g.worker.tap_interest().contains(EventSet::OUT));
    assert_eq!(g.peer_recv(), None);
    g.peer.full.store(false, Ordering::SeqCst);
    let mut events = [EpollEvent::default(); 4];
    assert!(!g.worker.poll_once(&mut events, 5000).unwrap());
    assert!(!g.worker.tx_blocked());
    assert_eq!(g.tx.used_idx(&m), 1);
    assert_eq!(g.peer_recv().as_deref(), Some(&f[..]));
    assert!(!g.worker.tap_interest().contains(EventSet::OUT));
    assert_eq!(g.stat(|s| &s.tx_errors), 0);
}

#[test]
fn a_disabled_rx_queue_leaves_the_tap_unread() {
    let m = mem();
    let mut g = Harness::new(&m, FEATURE_VERSION_1);
    g.peer.sock.send(&frame(0, 60, 1)).unwrap();
    g.worker.queues[RX_QUEUE] = Queue::new(RING_SIZE).unwrap();
    g.process();
    assert_eq!(g.peer.reads.load(Ordering::SeqCst), 0);
    assert!(
        !g.worker.tap_interest().contains(EventSet::IN),
        "no spinning"
    );
}

#[test]
fn offloads_follow_the_guest_features() {
    assert_eq!(tun_offload_flags(F_GUEST_TSO4), 0, "no TSO without csum");
    assert_eq!(tun_offload_flags(F_GUEST_CSUM), libc::TUN_F_CSUM);
    assert_eq!(
        tun_offload_flags(F_GUEST_CSUM | F_GUEST_TSO4 | F_GUEST_TSO6 | F_GUEST_UFO),
        libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6 | libc::TUN_F_UFO
    );
}

fn config(mtu: Option<u16>) -> NetConfig {
    NetConfig {
        source: TapSource::Name("unused".into()),
        mac: [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee],
        mtu,
    }
}

#[test]
fn device_config_features_and_thread_lifecycle() {
    let (backend, peer) = fake();
    assert!(matches!(
        Net::with_backend(config(Some(40)), backend),
        Err(NetError::BadMtu(40))
    ));
    let (backend, peer2) = fake();
    drop(peer);
    let mut dev = Net::with_backend(config(Some(9000)), backend).unwrap();
    assert_eq!(dev.device_type(), 1);
    assert_eq!(dev.queue_max_sizes(), &[QUEUE_SIZE; 2]);
    for f in [
        F_MAC,
        F_MTU,
        F_STATUS,
        F_MRG_RXBUF,
        F_CSUM,
        F_HOST_TSO4,
        FEATURE_RING_EVENT_IDX,
    ] {
        assert_ne!(dev.avail_features() & f, 0);
    }
    assert_eq!(AVAIL_FEATURES, dev.avail_features());
    let mut cfg = [0u8; 12];
    dev.read_config(0, &mut cfg);
    assert_eq!(&cfg[..6], &[0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
    assert_eq!(u16::from_le_bytes([cfg[6], cfg[7]]), S_LINK_UP);
    assert_eq!(u16::from_le_bytes([cfg[10], cfg[11]]), 9000);
    let mut past = [0xffu8; 4];
    dev.read_config(10, &mut past);
    assert_eq!(past, [0xff; 4], "out-of-range reads are left alone");

    dev.ack_features(FEATURE_VERSION_1 | F_GUEST_CSUM | F_GUEST_TSO4);
    let m = mem();
    let queues = || -> Vec<Queue> {
        (0..2u64)
            .map(|i| {
                MockSplitQueue::create(&m, GuestAddress(i * 0x1000), 16)
                    .create_queue()
                    .unwrap()
            })
            .collect()
    };
    let irq = Arc::new(Interrupt::new().unwrap());
    dev.activate(m.clone(), Arc::clone(&irq), queues()).unwrap();
    assert_eq!(
        peer2.offload.load(Ordering::SeqCst),
        libc::TUN_F_CSUM | libc::TUN_F_TSO4
    );
    dev.queue_notify(1);
    assert!(dev.reset(), "reset stops the thread and keeps the tap");
    dev.ack_features(FEATURE_VERSION_1);
    dev.activate(m.clone(), irq, queues()).unwrap();
    assert_eq!(peer2.offload.load(Ordering::SeqCst), 0);
}
