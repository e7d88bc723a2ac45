//! Test fixtures: a thread in a network namespace of its own, veths with
//! addresses and routes made through netlink, packet sockets and frames.

use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use agent_protocol::network::MacAddr;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use nix::poll::{PollFd, PollFlags};
use nix::sys::socket::{self, SockFlag, SockProtocol, SockType};

use crate::host::net::socket::Netlink;
use crate::host::net::{link, HostInterface};

/// How long a test waits for a frame before it fails.
const FRAME_WAIT: Duration = Duration::from_secs(5);
/// An EtherType for local experiments (IEEE 802): nothing else sends it.
pub const TEST_ETHERTYPE: u16 = 0x88b5;

/// Runs `test` on a new thread in a new network namespace; skipped (with a
/// note) where namespaces cannot be made.
pub fn in_new_netns(test: impl FnOnce() + Send + 'static) {
    let outcome = std::thread::spawn(move || {
        if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
            println!("note: cannot unshare a network namespace (not root?), skipping");
            return;
        }
        test();
    })
    .join();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Makes the veth pair `name`/`peer`, both up.
pub fn add_veth(nl: &mut Netlink, name: &str, peer: &str) -> (u32, u32) {
    let mut peer_message = LinkMessage::default();
    peer_message
        .attributes
        .push(LinkAttribute::IfName(peer.to_string()));
    let mut message = LinkMessage::default();
    message.attributes = vec![
        LinkAttribute::IfName(name.to_string()),
        LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_message))),
        ]),
    ];
    nl.request(
        "add veth",
        RouteNetlinkMessage::NewLink(message),
        NLM_F_CREATE | NLM_F_EXCL,
    )
    .unwrap();
    let indexes = (
        link::index_of(nl, name).unwrap(),
        link::index_of(nl, peer).unwrap(),
    );
    link::set_up(nl, indexes.0, name, None).unwrap();
    link::set_up(nl, indexes.1, peer, None).unwrap();
    indexes
}

pub fn add_address(nl: &mut Netlink, index: u32, address: IpAddr, prefix_len: u8) {
    let mut message = AddressMessage::default();
    message.header.family = match address {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    message.header.prefix_len = prefix_len;
    message.header.index = index;
    message.attributes.push(AddressAttribute::Local(address));
    message.attributes.push(AddressAttribute::Address(address));
    nl.request(
        "add address",
        RouteNetlinkMessage::NewAddress(message),
        NLM_F_CREATE | NLM_F_EXCL,
    )
    .unwrap();
}

/// Adds an IPv4 route (`destination` `None`: the default one) as
/// `ip route add` does (protocol boot).
pub fn add_route(
    nl: &mut Netlink,
    oif: u32,
    destination: Option<(IpAddr, u8)>,
    gateway: IpAddr,
    metric: u32,
) {
    let mut message = RouteMessage::default();
    message.header.address_family = AddressFamily::Inet;
    message.header.table = RouteHeader::RT_TABLE_MAIN;
    message.header.protocol = RouteProtocol::Boot;
    message.header.scope = RouteScope::Universe;
    message.header.kind = RouteType::Unicast;
    if let Some((address, prefix_len)) = destination {
        message.header.destination_prefix_length = prefix_len;
        message
            .attributes
            .push(RouteAttribute::Destination(RouteAddress::from(address)));
    }
    message.attributes.extend([
        RouteAttribute::Gateway(RouteAddress::from(gateway)),
        RouteAttribute::Oif(oif),
        RouteAttribute::Priority(metric),
    ]);
    nl.request(
        "add route",
        RouteNetlinkMessage::NewRoute(message),
        NLM_F_CREATE | NLM_F_EXCL,
    )
    .unwrap();
}

pub fn find<'a>(interfaces: &'a [HostInterface], name: &str) -> &'a HostInterface {
    interfaces
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("{name} not in {interfaces:?}"))
}

/// An Ethernet frame of [`TEST_ETHERTYPE`] carrying `payload`.
pub fn frame(dst: MacAddr, src: MacAddr, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&dst.0);
    out.extend_from_slice(&src.0);
    out.extend_from_slice(&TEST_ETHERTYPE.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A packet socket bound to link `index`, seeing every frame on it.
pub fn packet_socket(index: u32) -> OwnedFd {
    let fd = socket::socket(
        socket::AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::EthAll,
    )
    .unwrap();
    // SAFETY: sockaddr_ll is plain old data; all zeroes is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = index as i32;
    let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // nix's LinkAddr needs its `net` feature, which hull does not enable.
    // SAFETY: the pointer is to a live, fully initialised sockaddr_ll of
    // the length given; the fd is an open packet socket.
    let rc = unsafe { libc::bind(fd.as_raw_fd(), std::ptr::from_ref(&sll).cast(), len) };
    assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
    fd
}

/// Reads from `fd` until `matches` accepts what was read; panics after
/// [`FRAME_WAIT`].
pub fn read_until(fd: &impl AsFd, matches: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let deadline = Instant::now() + FRAME_WAIT;
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        if nix::poll::poll(&mut fds, 100u16).unwrap() == 0 {
            continue;
        }
        let n = nix::unistd::read(fd, &mut buf).unwrap();
        if matches(&buf[..n]) {
            return buf[..n].to_vec();
        }
    }
    panic!("no matching frame within {FRAME_WAIT:?}");
}
