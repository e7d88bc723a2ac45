//! Packet validation tests and in-process end-to-end tests: mock queues in
//! real guest memory, the worker driven inline, real Unix sockets.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use virtio_queue::desc::{split::Descriptor as SplitDescriptor, RawDescriptor};
use virtio_queue::mock::MockSplitQueue;
use virtio_queue::Queue;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::epoll::EpollEvent;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::event_handler::Worker;
use super::packet::{Header, Op, PacketError, RawHeader, RxBuffer, TxPacket, HDR_SIZE};
use super::unix::Muxer;
use super::*;
use crate::devices::virtio::{Interrupt, VirtioDevice};

const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;
const CID: u64 = 3;

fn mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap()
}

fn raw(op: u16, src_port: u32, dst_port: u32, len: u32) -> RawHeader {
    RawHeader {
        src_cid: CID,
        dst_cid: HOST_CID,
        src_port,
        dst_port,
        len,
        type_: TYPE_STREAM,
        op,
        flags: 0,
        buf_alloc: 4096,
        fwd_cnt: 0,
    }
}

fn desc(addr: u64, len: u32, flags: u16, next: u16) -> RawDescriptor {
    RawDescriptor::from(SplitDescriptor::new(addr, len, flags, next))
}

/// Parses one chain of `descs` (linked in order) as a TX packet.
fn parse_tx(mem: &GuestMemoryMmap, descs: &[(u64, u32, u16)]) -> Result<TxPacket, PacketError> {
    let q = MockSplitQueue::new(mem, 16);
    let raw: Vec<_> = descs.iter().map(|&(a, l, f)| desc(a, l, f, 0)).collect();
    TxPacket::parse(mem, q.build_desc_chain(&raw).unwrap())
}

#[test]
fn header_round_trip_and_layout() {
    let mut h = raw(OP_SHUTDOWN, 7, 9, 0);
    h.flags = SHUTDOWN_BOTH | 0x10;
    h.fwd_cnt = 0xdead_beef;
    let b = h.to_bytes();
    assert_eq!(b.len(), 44);
    assert_eq!(&b[0..8], &CID.to_le_bytes());
    assert_eq!(&b[30..32], &OP_SHUTDOWN.to_le_bytes());
    assert_eq!(&b[40..44], &0xdead_beef_u32.to_le_bytes());
    assert_eq!(RawHeader::from_bytes(&b), h);
    let v = Header::validate(&h).unwrap();
    assert_eq!(v.op, Op::Shutdown);
    assert_eq!(v.flags, SHUTDOWN_BOTH, "undefined flag bits are masked");
    assert_eq!(v.to_raw(0).flags, SHUTDOWN_BOTH);
}

#[test]
fn header_validation_rejects_bad_fields() {
    let mut h = raw(OP_RW, 1, 2, 0);
    h.type_ = 2;
    assert_eq!(Header::validate(&h), Err(PacketError::BadType(2)));
    assert_eq!(
        Header::validate(&raw(99, 1, 2, 0)),
        Err(PacketError::BadOp(99))
    );
    let big = MAX_PKT_PAYLOAD + 1;
    assert_eq!(
        Header::validate(&raw(OP_RW, 1, 2, big)),
        Err(PacketError::BadLength(big))
    );
    assert_eq!(
        Header::validate(&raw(OP_REQUEST, 1, 2, 4)),
        Err(PacketError::BadLength(4))
    );
}

#[test]
fn tx_packet_split_across_descriptors() {
    let m = mem();
    let bytes = raw(OP_RW, 5, 6, 5).to_bytes();
    m.write_slice(&bytes[..20], GuestAddress(0x10000)).unwrap();
    m.write_slice(&bytes[20..], GuestAddress(0x20000)).unwrap();
    m.write_slice(b"hello", GuestAddress(0x20000 + 24)).unwrap();
    let pkt = parse_tx(&m, &[(0x10000, 20, 0), (0x20000, 24 + 5, 0)]).unwrap();
    assert_eq!(pkt.payload, b"hello");
    assert_eq!(
        (pkt.hdr.src_port, pkt.hdr.dst_port, pkt.hdr.op),
        (5, 6, Op::Rw)
    );
}

#[test]
fn malformed_tx_packets_are_errors() {
    let m = mem();
    m.write_slice(&raw(OP_RW, 5, 6, 100).to_bytes(), GuestAddress(0x10000))
        .unwrap();
    assert_eq!(
        parse_tx(&m, &[(0x10000, 30, 0)]),
        Err(PacketError::ShortHeader)
    );
    // len (100) larger than the buffer that follows the header.
    assert_eq!(
        parse_tx(&m, &[(0x10000, 44 + 10, 0)]),
        Err(PacketError::ShortPayload)
    );
    assert_eq!(
        parse_tx(&m, &[(0x10000, 200, F_WRITE)]),
        Err(PacketError::WritableTx)
    );
    assert_eq!(
        parse_tx(&m, &[(0xff_fff0, 44, 0)]),
        Err(PacketError::Memory)
    );
    let mut bad = raw(OP_RW, 5, 6, 0);
    bad.type_ = 3;
    m.write_slice(&bad.to_bytes(), GuestAddress(0x10000))
        .unwrap();
    assert_eq!(
        parse_tx(&m, &[(0x10000, 44, 0)]),
        Err(PacketError::BadType(3))
    );
}

#[test]
fn rx_buffers_validated_and_written_across_descriptors() {
    let m = mem();
    let q = MockSplitQueue::new(&m, 16);
    let ro = q.build_desc_chain(&[desc(0x10000, 100, 0, 0)]).unwrap();
    assert_eq!(
        RxBuffer::parse(&m, ro).unwrap_err(),
        PacketError::ReadOnlyRx
    );
    let small = q
        .build_desc_chain(&[desc(0x10000, 40, F_WRITE, 0)])
        .unwrap();
    assert_eq!(
        RxBuffer::parse(&m, small).unwrap_err(),
        PacketError::ShortHeader
    );
    let chain = q
        .build_desc_chain(&[desc(0x10000, 30, F_WRITE, 0), desc(0x20000, 20, F_WRITE, 0)])
        .unwrap();
    let buf = RxBuffer::parse(&m, chain).unwrap();
    assert_eq!(buf.max_payload(), 6);
    let hdr = Header::validate(&raw(OP_RW, 1, 2, 0)).unwrap();
    assert!(buf.write(&m, &hdr, b"1234567").is_err());
    assert_eq!(buf.write(&m, &hdr, b"123456").unwrap(), 50);
    let mut got = [0u8; 50];
    m.read_slice(&mut got[..30], GuestAddress(0x10000)).unwrap();
    m.read_slice(&mut got[30..], GuestAddress(0x20000)).unwrap();
    let mut b = [0u8; HDR_SIZE];
    b.copy_from_slice(&got[..HDR_SIZE]);
    assert_eq!(RawHeader::from_bytes(&b).len, 6);
    assert_eq!(&got[HDR_SIZE..], b"123456");
}

/// A split virtqueue laid out by the test (the mock's layout overlaps the
/// avail and used rings once more than a few entries are posted).
struct Ring {
    base: u64,
}

const RING_SIZE: u16 = 16;

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

    fn queue(&self) -> Queue {
        use virtio_queue::QueueT;
        let mut q = Queue::new(RING_SIZE).unwrap();
        q.set_size(RING_SIZE);
        let lo_hi = |a: u64| (Some(a as u32), Some((a >> 32) as u32));
        let (l, h) = lo_hi(self.desc());
        q.set_desc_table_address(l, h);
        let (l, h) = lo_hi(self.avail());
        q.set_avail_ring_address(l, h);
        let (l, h) = lo_hi(self.used());
        q.set_used_ring_address(l, h);
        q.set_ready(true);
        q
    }

    fn set_desc(&self, m: &GuestMemoryMmap, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let at = self.desc() + 16 * u64::from(i % RING_SIZE);
        m.write_obj(addr, GuestAddress(at)).unwrap();
        m.write_obj(len, GuestAddress(at + 8)).unwrap();
        m.write_obj(flags, GuestAddress(at + 12)).unwrap();
        m.write_obj(next % RING_SIZE, GuestAddress(at + 14))
            .unwrap();
    }

    fn publish(&self, m: &GuestMemoryMmap, head: u16) {
        let idx: u16 = m.read_obj(GuestAddress(self.avail() + 2)).unwrap();
        let slot = self.avail() + 4 + 2 * u64::from(idx % RING_SIZE);
        m.write_obj(head % RING_SIZE, GuestAddress(slot)).unwrap();
        m.write_obj(idx.wrapping_add(1), GuestAddress(self.avail() + 2))
            .unwrap();
    }

    fn used_idx(&self, m: &GuestMemoryMmap) -> u16 {
        m.read_obj(GuestAddress(self.used() + 2)).unwrap()
    }

    /// (id, len) of used entry `i`.
    fn used_elem(&self, m: &GuestMemoryMmap, i: u16) -> (u32, u32) {
        let slot = self.used() + 4 + 8 * u64::from(i % RING_SIZE);
        (
            m.read_obj(GuestAddress(slot)).unwrap(),
            m.read_obj(GuestAddress(slot + 4)).unwrap(),
        )
    }
}

/// The guest side of an in-process device: hand-laid queues and the worker.
struct Harness<'a> {
    mem: &'a GuestMemoryMmap,
    rx: Ring,
    tx: Ring,
    worker: Worker,
    rx_posted: u16,
    rx_seen: u16,
    tx_posted: u16,
    events: Vec<EpollEvent>,
}

const RX_BUF: u64 = 0x40000;
const TX_BUF: u64 = 0x80000;
const BUF_LEN: u32 = 0x1000;

impl<'a> Harness<'a> {
    fn new(mem: &'a GuestMemoryMmap, path: &std::path::Path) -> Self {
        let rx = Ring { base: 0 };
        let tx = Ring { base: 0x1000 };
        let ev = Ring { base: 0x2000 };
        let queues = vec![rx.queue(), tx.queue(), ev.queue()];
        let stats = Arc::new(VsockStats::default());
        let listener = UnixListener::bind(path).unwrap();
        let muxer = Muxer::new(CID, path.to_owned(), listener, Arc::clone(&stats)).unwrap();
        let kick = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
        let stop = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
        let irq = Arc::new(Interrupt::new().unwrap());
        let worker = Worker::new(mem.clone(), irq, queues, muxer, kick, stop, stats).unwrap();
        Self {
            mem,
            rx,
            tx,
            worker,
            rx_posted: 0,
            rx_seen: 0,
            tx_posted: 0,
            events: vec![EpollEvent::default(); 16],
        }
    }

    /// Posts `n` receive buffers (at most the ring size outstanding).
    fn post_rx(&mut self, n: u16) {
        for _ in 0..n {
            let i = self.rx_posted % RING_SIZE;
            let addr = RX_BUF + u64::from(i) * u64::from(BUF_LEN);
            self.rx.set_desc(self.mem, i, addr, BUF_LEN, F_WRITE, 0);
            self.rx.publish(self.mem, i);
            self.rx_posted += 1;
        }
        self.pump();
    }

    fn send(&mut self, h: RawHeader, payload: &[u8]) {
        let slot = self.tx_posted % (RING_SIZE / 2);
        let (d0, d1) = (slot * 2, slot * 2 + 1);
        let addr = TX_BUF + u64::from(slot) * u64::from(BUF_LEN);
        let paddr = addr + HDR_SIZE as u64;
        self.mem
            .write_slice(&h.to_bytes(), GuestAddress(addr))
            .unwrap();
        self.mem.write_slice(payload, GuestAddress(paddr)).unwrap();
        let hlen = HDR_SIZE as u32;
        if payload.is_empty() {
            self.tx.set_desc(self.mem, d0, addr, hlen, 0, 0);
        } else {
            self.tx.set_desc(self.mem, d0, addr, hlen, F_NEXT, d1);
            self.tx
                .set_desc(self.mem, d1, paddr, payload.len() as u32, 0, 0);
        }
        self.tx.publish(self.mem, d0);
        self.tx_posted += 1;
        self.pump();
        assert_eq!(self.tx.used_idx(self.mem), self.tx_posted, "tx consumed");
    }

    fn pump(&mut self) {
        self.worker.process();
        for _ in 0..5 {
            assert!(!self.worker.poll_once(&mut self.events, 10).unwrap());
        }
    }

    /// The next packet the device put in the RX queue.
    fn recv(&mut self) -> (RawHeader, Vec<u8>) {
        for _ in 0..50 {
            if self.rx.used_idx(self.mem) != self.rx_seen {
                break;
            }
            self.pump();
        }
        assert_ne!(
            self.rx.used_idx(self.mem),
            self.rx_seen,
            "no packet for the guest"
        );
        let (id, len) = self.rx.used_elem(self.mem, self.rx_seen);
        self.rx_seen = self.rx_seen.wrapping_add(1);
        let addr = RX_BUF + u64::from(id) * u64::from(BUF_LEN);
        let mut b = [0u8; HDR_SIZE];
        self.mem.read_slice(&mut b, GuestAddress(addr)).unwrap();
        let h = RawHeader::from_bytes(&b);
        assert_eq!(len as usize, HDR_SIZE + h.len as usize);
        let mut payload = vec![0u8; h.len as usize];
        let paddr = GuestAddress(addr + HDR_SIZE as u64);
        self.mem.read_slice(&mut payload, paddr).unwrap();
        // Hand the buffer back, as a driver would.
        self.post_rx(1);
        (h, payload)
    }

    fn no_packet(&mut self) {
        self.pump();
        assert_eq!(
            self.rx.used_idx(self.mem),
            self.rx_seen,
            "unexpected packet"
        );
    }
}

fn sock_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("hull-vsock-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn read_exact_timeout(s: &mut UnixStream, n: usize) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).unwrap();
    buf
}

#[test]
fn host_initiated_connection_end_to_end() {
    let m = mem();
    let path = sock_path("host-init");
    let mut g = Harness::new(&m, &path);
    g.post_rx(8);
    let mut client = UnixStream::connect(&path).unwrap();
    client.write_all(b"CONNECT 1234\n").unwrap();
    let (req, _) = g.recv();
    assert_eq!(req.op, OP_REQUEST);
    assert_eq!((req.src_cid, req.dst_cid), (HOST_CID, CID));
    assert_eq!((req.src_port, req.dst_port), (FIRST_LOCAL_PORT, 1234));
    assert_eq!(req.buf_alloc, CONN_BUF_SIZE);

    // Guest accepts, advertising an 8-byte receive buffer.
    let mut resp = raw(OP_RESPONSE, 1234, FIRST_LOCAL_PORT, 0);
    resp.buf_alloc = 8;
    g.send(resp, &[]);
    assert_eq!(read_exact_timeout(&mut client, 8), b"OK 1024\n");

    // Guest to host.
    let mut hello = raw(OP_RW, 1234, FIRST_LOCAL_PORT, 5);
    hello.buf_alloc = 8;
    g.send(hello, b"hello");
    assert_eq!(read_exact_timeout(&mut client, 5), b"hello");

    // Host to guest, within the guest's 8 bytes of credit only.
    client.write_all(b"0123456789abcdef").unwrap();
    let mut got = Vec::new();
    while got.len() < 8 {
        let (h, p) = g.recv();
        assert_eq!(h.op, OP_RW);
        assert_eq!(h.fwd_cnt, 5, "device acknowledges the 5 bytes forwarded");
        got.extend(p);
    }
    assert_eq!(got, b"01234567");
    g.no_packet();
    // The guest consumed them: 8 more bytes of credit.
    let mut upd = raw(OP_CREDIT_UPDATE, 1234, FIRST_LOCAL_PORT, 0);
    upd.buf_alloc = 8;
    upd.fwd_cnt = 8;
    g.send(upd, &[]);
    let (h, p) = g.recv();
    assert_eq!((h.op, p.as_slice()), (OP_RW, &b"89abcdef"[..]));

    // Host half-close reaches the guest as SHUTDOWN(SEND) once credit allows.
    client.shutdown(std::net::Shutdown::Write).unwrap();
    upd.fwd_cnt = 16;
    g.send(upd, &[]);
    let (h, _) = g.recv();
    assert_eq!((h.op, h.flags), (OP_SHUTDOWN, SHUTDOWN_SEND));
    // The guest still writes, then closes: the device resets, client sees EOF.
    let mut bye = raw(OP_RW, 1234, FIRST_LOCAL_PORT, 3);
    bye.fwd_cnt = 16;
    g.send(bye, b"bye");
    let mut sd = raw(OP_SHUTDOWN, 1234, FIRST_LOCAL_PORT, 0);
    sd.fwd_cnt = 16;
    sd.flags = SHUTDOWN_BOTH;
    g.send(sd, &[]);
    let (h, _) = g.recv();
    assert_eq!(h.op, OP_RST);
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"bye");
    assert_eq!(g.worker.muxer.connection_count(), 0);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn host_connect_refused_by_guest_and_bad_lines_close_the_client() {
    let m = mem();
    let path = sock_path("refused");
    let mut g = Harness::new(&m, &path);
    g.post_rx(4);
    let mut client = UnixStream::connect(&path).unwrap();
    client.write_all(b"CONNECT 77\n").unwrap();
    let (req, _) = g.recv();
    g.send(raw(OP_RST, 77, req.src_port, 0), &[]);
    let mut rest = Vec::new();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());

    for line in [&b"CONNECT x\n"[..], &[b'A'; 40][..]] {
        let mut bad = UnixStream::connect(&path).unwrap();
        bad.write_all(line).unwrap();
        g.pump();
        bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        // Closed with unread bytes: EOF or a reset, never data or a hang.
        match bad.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty()),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
        }
    }
    g.no_packet();
    assert_eq!(g.worker.muxer.connection_count(), 0);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn guest_initiated_connection_and_refusal() {
    let m = mem();
    let path = sock_path("guest-init");
    let port_path = PathBuf::from(format!("{}_5000", path.display()));
    let _ = std::fs::remove_file(&port_path);
    let listener = UnixListener::bind(&port_path).unwrap();
    let mut g = Harness::new(&m, &path);
    g.post_rx(8);

    // Nothing listens on port 6000: reset.
    g.send(raw(OP_REQUEST, 40000, 6000, 0), &[]);
    let (h, _) = g.recv();
    assert_eq!((h.op, h.src_port, h.dst_port), (OP_RST, 6000, 40000));

    g.send(raw(OP_REQUEST, 40001, 5000, 0), &[]);
    let (h, _) = g.recv();
    assert_eq!((h.op, h.src_port, h.dst_port), (OP_RESPONSE, 5000, 40001));
    let (mut host, _) = listener.accept().unwrap();
    g.send(raw(OP_RW, 40001, 5000, 4), b"ping");
    assert_eq!(read_exact_timeout(&mut host, 4), b"ping");
    host.write_all(b"pong").unwrap();
    let (h, p) = g.recv();
    assert_eq!((h.op, p.as_slice()), (OP_RW, &b"pong"[..]));

    // A packet for an unknown connection is answered with a reset; a wrong
    // source CID is dropped.
    g.send(raw(OP_RW, 1, 2, 1), b"x");
    assert_eq!(g.recv().0.op, OP_RST);
    let mut wrong = raw(OP_RW, 40001, 5000, 1);
    wrong.src_cid = 9;
    g.send(wrong, b"x");
    g.no_packet();
    assert_eq!(VsockStats::get(&g.worker.stats.dropped_packets), 1);

    // Malformed TX packets are counted and dropped; the connection survives.
    let mut bad = raw(OP_RW, 40001, 5000, 0);
    bad.type_ = 7;
    g.send(bad, &[]);
    assert_eq!(VsockStats::get(&g.worker.stats.bad_tx_packets), 1);
    assert_eq!(g.worker.muxer.connection_count(), 1);

    // Guest resets: the host socket is closed.
    g.send(raw(OP_RST, 40001, 5000, 0), &[]);
    let mut rest = Vec::new();
    host.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    host.read_to_end(&mut rest).unwrap();
    assert_eq!(g.worker.muxer.connection_count(), 0);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&port_path);
}

#[test]
fn device_config_and_thread_lifecycle() {
    let path = sock_path("device");
    assert!(matches!(
        Vsock::new(2, path.clone()),
        Err(VsockError::InvalidCid(2))
    ));
    let mut dev = Vsock::new(CID, path.clone()).unwrap();
    let mut cfg = [0u8; 8];
    dev.read_config(0, &mut cfg);
    assert_eq!(u64::from_le_bytes(cfg), CID);
    let mut past = [0u8; 4];
    dev.read_config(6, &mut past);
    assert_eq!(past, [0; 4], "out-of-range config reads stay zero");
    assert_eq!(dev.queue_max_sizes().len(), 3);

    let m = mem();
    let queues: Vec<Queue> = (0..3u64)
        .map(|i| {
            MockSplitQueue::create(&m, GuestAddress(i * 0x1000), 16)
                .create_queue()
                .unwrap()
        })
        .collect();
    let irq = Arc::new(Interrupt::new().unwrap());
    dev.activate(m.clone(), Arc::clone(&irq), queues).unwrap();
    dev.queue_notify(1);
    assert!(dev.reset(), "reset stops and joins the thread");
    drop(dev);
    assert!(!path.exists(), "socket removed on drop");
}
