//! The real tap path (root only): a tap in a private network namespace,
//! frames written through it seen by a packet socket on the interface, and
//! frames sent by the packet socket read back from the tap with their vnet
//! header.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::epoll::EpollEvent;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::event_handler::Worker;
use super::tap::{NetBackend, Tap};
use super::tests::{mem, Ring, F_WRITE};
use super::{NetError, NetStats, F_MRG_RXBUF, VNET_HDR_LEN_BYTES};
use crate::devices::virtio::{Interrupt, FEATURE_VERSION_1};

const TAP_NAME: &str = "hulltest0";
/// IEEE 802 local experimental ethertype: nothing else sends it.
const ETHERTYPE_TEST: u16 = 0x88b5;
const WAIT: Duration = Duration::from_secs(5);

fn check(rc: libc::c_int, what: &str) {
    assert!(rc >= 0, "{what}: {}", io::Error::last_os_error());
}

/// Brings `name` up (SIOCSIFFLAGS on a datagram socket of this netns).
fn set_up(name: &str) {
    // SAFETY: plain socket(2) call; the fd is owned right after.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    check(fd, "socket");
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero ifreq is a valid value of the plain C struct.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: `ifr` is a valid ifreq for both calls; the kernel reads the
    // name and reads/writes the flags member only.
    unsafe {
        check(
            libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr),
            "SIOCGIFFLAGS",
        );
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        check(
            libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &mut ifr),
            "SIOCSIFFLAGS",
        );
    }
}

/// A packet socket for ETHERTYPE_TEST bound to `ifindex`, with a receive
/// timeout.
fn packet_socket(ifindex: i32) -> (OwnedFd, libc::sockaddr_ll) {
    let proto = ETHERTYPE_TEST.to_be();
    // SAFETY: plain socket(2) call; the fd is owned right after.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(proto),
        )
    };
    check(fd, "socket(AF_PACKET)");
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero sockaddr_ll is a valid value of the plain C struct.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = proto;
    addr.sll_ifindex = ifindex;
    addr.sll_halen = 6;
    addr.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    let tv = libc::timeval {
        tv_sec: WAIT.as_secs() as libc::time_t,
        tv_usec: 0,
    };
    let tv_len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: `addr` and `tv` are valid for the lengths given.
    unsafe {
        check(
            libc::bind(fd, (&raw const addr).cast(), len),
            "bind(AF_PACKET)",
        );
        check(
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                tv_len,
            ),
            "SO_RCVTIMEO",
        );
    }
    (sock, addr)
}

/// An Ethernet broadcast frame of ETHERTYPE_TEST with a patterned payload.
fn eth_frame(seed: u8, payload_len: usize) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, seed]);
    f.extend_from_slice(&ETHERTYPE_TEST.to_be_bytes());
    f.extend((0..payload_len).map(|i| seed.wrapping_add(i as u8)));
    f
}

/// Reads frames from the tap until one of ETHERTYPE_TEST arrives (the
/// kernel also sends its own IPv6 chatter) or WAIT passes.
fn read_test_frame(tap: &mut Tap) -> Vec<u8> {
    let deadline = Instant::now() + WAIT;
    let mut buf = vec![0u8; super::MAX_FRAME_BYTES];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no test frame from the tap");
        let mut pfd = libc::pollfd {
            fd: tap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32) };
        match tap.read_frame(&mut buf) {
            Ok(n) if buf[VNET_HDR_LEN_BYTES + 12..][..2] == ETHERTYPE_TEST.to_be_bytes() => {
                return buf[..n].to_vec()
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("tap read: {e}"),
        }
    }
}

fn in_private_netns() {
    // SAFETY: unshare(2) with CLONE_NEWNET only moves this thread into a new
    // network namespace; it touches no memory.
    check(
        unsafe { libc::unshare(libc::CLONE_NEWNET) },
        "unshare(CLONE_NEWNET)",
    );
    let mut tap = Tap::open(TAP_NAME).unwrap();
    assert_eq!(tap.name(), TAP_NAME);
    tap.set_offload(libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6)
        .unwrap();
    set_up(TAP_NAME);
    let name = std::ffi::CString::new(TAP_NAME).unwrap();
    // SAFETY: `name` is a valid NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    assert_ne!(ifindex, 0);
    let (sock, addr) = packet_socket(ifindex as i32);

    // Guest to host: the vnet header is taken off, the frame arrives as is.
    let eth = eth_frame(1, 100);
    let mut framed = vec![0u8; VNET_HDR_LEN_BYTES];
    framed.extend_from_slice(&eth);
    assert_eq!(tap.write_frame(&framed).unwrap(), framed.len());
    let mut got = vec![0u8; 2048];
    // SAFETY: `got` is valid for writes of its length.
    let n = unsafe { libc::recv(sock.as_raw_fd(), got.as_mut_ptr().cast(), got.len(), 0) };
    assert!(n > 0, "packet socket recv: {}", io::Error::last_os_error());
    assert_eq!(&got[..n as usize], &eth[..]);

    // The kernel parses the header: an unknown GSO type is refused.
    let mut bogus = framed.clone();
    bogus[1] = 99;
    let e = tap.write_frame(&bogus).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));

    // Host to guest: a frame sent on the interface comes out of the tap
    // led by a 12-byte vnet header (no offload asked for: all zero).
    let eth = eth_frame(2, 200);
    let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `eth` and `addr` are valid for the lengths given.
    let sent = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            eth.as_ptr().cast(),
            eth.len(),
            0,
            (&raw const addr).cast(),
            len,
        )
    };
    assert_eq!(sent, eth.len() as isize, "{}", io::Error::last_os_error());
    let got = read_test_frame(&mut tap);
    assert_eq!(&got[..VNET_HDR_LEN_BYTES - 2], &[0u8; 10]);
    assert_eq!(&got[VNET_HDR_LEN_BYTES..], &eth[..]);
}

/// The worker, driven inline, between hand-laid rings and a real tap.
fn worker_over_a_real_tap() {
    // SAFETY: as in `in_private_netns`.
    check(unsafe { libc::unshare(libc::CLONE_NEWNET) }, "unshare");
    let tap = Tap::open(TAP_NAME).unwrap();
    set_up(TAP_NAME);
    let name = std::ffi::CString::new(TAP_NAME).unwrap();
    // SAFETY: `name` is a valid NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    let (sock, addr) = packet_socket(ifindex as i32);
    let m = mem();
    let (rx, tx) = (Ring { base: 0 }, Ring { base: 0x1000 });
    let mut worker = Worker::new(
        m.clone(),
        Arc::new(Interrupt::new().unwrap()),
        vec![rx.queue(false), tx.queue(false)],
        Box::new(tap),
        FEATURE_VERSION_1 | F_MRG_RXBUF,
        Arc::new(EventFd::new(EFD_NONBLOCK).unwrap()),
        Arc::new(EventFd::new(EFD_NONBLOCK).unwrap()),
        Arc::new(NetStats::default()),
    )
    .unwrap();

    // Guest to host.
    let eth = eth_frame(3, 300);
    let buf = 0x80000;
    m.write_slice(&[0u8; VNET_HDR_LEN_BYTES], GuestAddress(buf))
        .unwrap();
    m.write_slice(&eth, GuestAddress(buf + VNET_HDR_LEN_BYTES as u64))
        .unwrap();
    tx.set_desc(&m, 0, buf, (VNET_HDR_LEN_BYTES + eth.len()) as u32, 0, 0);
    tx.publish(&m, 0);
    worker.process().unwrap();
    assert_eq!(tx.used_idx(&m), 1);
    let mut got = vec![0u8; 2048];
    // SAFETY: `got` is valid for writes of its length.
    let n = unsafe { libc::recv(sock.as_raw_fd(), got.as_mut_ptr().cast(), got.len(), 0) };
    assert!(n > 0, "packet socket recv: {}", io::Error::last_os_error());
    assert_eq!(&got[..n as usize], &eth[..]);

    // Host to guest, into 2 KiB mergeable buffers.
    for i in 0..8u16 {
        rx.set_desc(&m, i, 0x10000 + u64::from(i) * 0x1000, 2048, F_WRITE, 0);
        rx.publish(&m, i);
    }
    let eth = eth_frame(4, 1400);
    let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `eth` and `addr` are valid for the lengths given.
    let sent = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            eth.as_ptr().cast(),
            eth.len(),
            0,
            (&raw const addr).cast(),
            len,
        )
    };
    assert_eq!(sent, eth.len() as isize);
    let deadline = Instant::now() + WAIT;
    let mut events = [EpollEvent::default(); 4];
    let mut seen = 0u16;
    loop {
        assert!(Instant::now() < deadline, "frame never reached the rx ring");
        worker.poll_once(&mut events, 1000).unwrap();
        let mut found = None;
        while seen != rx.used_idx(&m) {
            let (id, len) = rx.used_elem(&m, seen);
            seen += 1;
            let mut b = vec![0u8; len as usize];
            m.read_slice(&mut b, GuestAddress(0x10000 + u64::from(id) * 0x1000))
                .unwrap();
            if b.get(VNET_HDR_LEN_BYTES + 12..VNET_HDR_LEN_BYTES + 14)
                == Some(&ETHERTYPE_TEST.to_be_bytes()[..])
            {
                found = Some(b);
            }
        }
        if let Some(b) = found {
            assert_eq!(u16::from_le_bytes([b[10], b[11]]), 1, "num_buffers");
            assert_eq!(&b[VNET_HDR_LEN_BYTES..], &eth[..]);
            break;
        }
    }
    assert_eq!(NetStats::get(&worker.stats.tx_frames), 1);
}

#[test]
fn the_worker_moves_frames_through_a_real_tap() {
    if !can_run() {
        return;
    }
    std::thread::spawn(worker_over_a_real_tap).join().unwrap();
}

fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let ok = root && std::path::Path::new("/dev/net/tun").exists();
    if !ok {
        eprintln!("skipped: needs root and /dev/net/tun");
    }
    ok
}

#[test]
fn real_tap_carries_frames_with_vnet_headers_both_ways() {
    if !can_run() {
        return;
    }
    // A thread of its own: the network namespace is per thread.
    std::thread::spawn(in_private_netns).join().unwrap();
}

/// A tap fd opened by hand with `flags`, as a runtime would.
fn raw_tap(name: &str, flags: i32) -> RawFd {
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .unwrap();
    // SAFETY: an all-zero ifreq is a valid value of the plain C struct.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    ifr.ifr_ifru.ifru_flags = flags as libc::c_short;
    // SAFETY: `ifr` is a valid ifreq that outlives the call.
    check(
        unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut ifr) },
        "TUNSETIFF",
    );
    std::os::fd::IntoRawFd::into_raw_fd(file)
}

#[test]
fn adopting_an_fd_checks_it_is_a_vnet_tap() {
    if !can_run() {
        return;
    }
    let file = std::fs::File::open("/dev/null").unwrap();
    let fd: RawFd = std::os::fd::IntoRawFd::into_raw_fd(file);
    assert!(matches!(Tap::from_fd(fd), Err(NetError::NotATap { .. })));
    assert!(matches!(Tap::from_fd(-1), Err(NetError::FdNotOpen(-1))));
    std::thread::spawn(|| {
        // SAFETY: as in `in_private_netns`.
        check(unsafe { libc::unshare(libc::CLONE_NEWNET) }, "unshare");
        let plain = raw_tap("hullplain0", libc::IFF_TAP | libc::IFF_NO_PI);
        assert!(matches!(
            Tap::from_fd(plain),
            Err(NetError::NoVnetHeader { .. })
        ));
        let fd = raw_tap(
            TAP_NAME,
            libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR,
        );
        let adopted = Tap::from_fd(fd).unwrap();
        assert_eq!(adopted.name(), TAP_NAME);
        // SAFETY: F_GETFL on an open fd.
        let fl = unsafe { libc::fcntl(adopted.as_raw_fd(), libc::F_GETFL) };
        assert_ne!(fl & libc::O_NONBLOCK, 0, "made non-blocking");
    })
    .join()
    .unwrap();
}
