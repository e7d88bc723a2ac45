//! configure() against real links: each test runs in a thread of its own
//! that first moves into a new network namespace, where it creates veth
//! pairs with known MACs (standing in for the virtio-net NICs).

use std::net::IpAddr;

use agent_protocol::network::{reserved_mac, Interface, IpCidr, MacAddr, NetworkConfig, Route};
use agent_protocol::wire::{ErrorCode, Response};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteScope,
};
use netlink_packet_route::AddressFamily;
use nix::sched::{unshare, CloneFlags};

use super::link::{self, Link};
use super::message::Message;
use super::netlink::Netlink;
use super::reserved::tests::FakeSysfs;
use super::reserved::{lock, Entry, ReservedNic, State};
use super::*;

const MAC_A: &str = "02:00:00:00:00:0a";
const MAC_B: &str = "02:00:00:00:00:0b";

/// Runs `body` in a new thread in a new network namespace.
fn in_netns(body: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET) needs root");
        body();
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
}

/// A veth pair: `name` with `mac`, and its peer `peer`.
fn add_veth(name: &str, mac: &str, peer: &str) {
    let mac: MacAddr = mac.parse().unwrap();
    let mut peer_message = LinkMessage::default();
    peer_message
        .attributes
        .push(LinkAttribute::IfName(peer.into()));
    let mut message = LinkMessage::default();
    message.attributes = vec![
        LinkAttribute::IfName(name.into()),
        LinkAttribute::Address(mac.0.to_vec()),
        LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_message))),
        ]),
    ];
    let mut netlink = Netlink::open().unwrap();
    netlink
        .request(Message::NewLink(message), NLM_F_CREATE | NLM_F_EXCL)
        .unwrap();
}

fn links() -> Vec<Link> {
    link::list(&mut Netlink::open().unwrap()).unwrap()
}

fn link_named(name: &str) -> Link {
    let all = links();
    all.iter()
        .find(|l| l.name == name)
        .cloned()
        .unwrap_or_else(|| panic!("no link {name} in {all:?}"))
}

/// (link index, address, prefix length, flags) of every address.
fn addresses() -> Vec<(u32, IpAddr, u8, AddressFlags)> {
    let replies = Netlink::open()
        .unwrap()
        .dump(Message::GetAddress(AddressMessage::default()))
        .unwrap();
    let mut out = Vec::new();
    for reply in replies {
        let Message::NewAddress(m) = reply else {
            continue;
        };
        let address = m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        });
        let flags = m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Flags(f) => Some(*f),
            _ => None,
        });
        if let (Some(address), Some(flags)) = (address, flags) {
            out.push((m.header.index, address, m.header.prefix_len, flags));
        }
    }
    out
}

/// The main table's routes of `family`.
fn routes(family: AddressFamily) -> Vec<RouteMessage> {
    let mut request = RouteMessage::default();
    request.header.address_family = family;
    let replies = Netlink::open()
        .unwrap()
        .dump(Message::GetRoute(request))
        .unwrap();
    replies
        .into_iter()
        .filter_map(|reply| match reply {
            Message::NewRoute(m) if m.header.table == RouteHeader::RT_TABLE_MAIN => Some(m),
            _ => None,
        })
        .collect()
}

fn cidr(text: &str) -> IpCidr {
    let (address, prefix_len) = text.split_once('/').unwrap();
    IpCidr {
        address: address.parse().unwrap(),
        prefix_len: prefix_len.parse().unwrap(),
    }
}

fn route(destination: Option<&str>, gateway: Option<&str>, metric: Option<u32>) -> Route {
    Route {
        destination: destination.map(cidr),
        gateway: gateway.map(|g| g.parse().unwrap()),
        device: "eth0".into(),
        metric,
        source: None,
    }
}

fn interface(name: &str, mac: &str, mtu: u32, addresses: &[&str]) -> Interface {
    Interface {
        name: name.into(),
        mac: mac.parse().unwrap(),
        reserved_mac: None,
        mtu,
        addresses: addresses.iter().map(|a| cidr(a)).collect(),
    }
}

fn has(m: &RouteMessage, attribute: RouteAttribute) -> bool {
    m.attributes.contains(&attribute)
}

fn docker_like() -> NetworkConfig {
    let mut onlink = route(Some("192.168.5.0/24"), None, None);
    onlink.source = Some("10.1.0.2".parse().unwrap());
    NetworkConfig {
        interfaces: vec![interface(
            "eth0",
            MAC_A,
            9000,
            &["10.1.0.2/24", "fd00::2/64"],
        )],
        routes: vec![
            // Before the on-link route it needs; applied after it.
            route(Some("10.9.0.0/16"), Some("192.168.5.1"), Some(50)),
            route(None, Some("10.1.0.1"), None),
            route(None, Some("fd00::1"), None),
            onlink,
        ],
    }
}

#[test]
fn an_interface_gets_its_name_mtu_addresses_and_routes() {
    in_netns(|| {
        add_veth("veth-a", MAC_A, "peer-a");
        let before = link_named("veth-a");
        let config = docker_like();
        assert_eq!(configure(&config), Response::Ok);
        // Applying it again changes nothing and is no error.
        assert_eq!(configure(&config), Response::Ok);

        let eth0 = link_named("eth0");
        assert_eq!(eth0.index, before.index);
        assert_eq!(eth0.mtu, Some(9000));
        assert!(eth0.up);
        assert!(link_named("lo").up);

        let addrs = addresses();
        let v4: IpAddr = "10.1.0.2".parse().unwrap();
        let v6: IpAddr = "fd00::2".parse().unwrap();
        assert!(
            addrs
                .iter()
                .any(|a| (a.0, a.1, a.2) == (eth0.index, v4, 24)),
            "{addrs:?}"
        );
        let (.., flags) = addrs
            .iter()
            .find(|a| (a.0, a.1, a.2) == (eth0.index, v6, 64))
            .unwrap_or_else(|| panic!("no fd00::2/64 in {addrs:?}"));
        assert!(flags.contains(AddressFlags::Nodad), "{flags:?}");

        let v4_routes = routes(AddressFamily::Inet);
        let gateway =
            |g: &str| RouteAttribute::Gateway(RouteAddress::from(g.parse::<IpAddr>().unwrap()));
        let default = v4_routes
            .iter()
            .find(|m| m.header.destination_prefix_length == 0)
            .unwrap_or_else(|| panic!("no default route in {v4_routes:?}"));
        assert!(has(default, gateway("10.1.0.1")), "{default:?}");
        assert!(has(default, RouteAttribute::Oif(eth0.index)), "{default:?}");
        let dst =
            |d: &str| RouteAttribute::Destination(RouteAddress::from(d.parse::<IpAddr>().unwrap()));
        let static_route = v4_routes
            .iter()
            .find(|m| has(m, dst("10.9.0.0")))
            .unwrap_or_else(|| panic!("no 10.9.0.0/16 in {v4_routes:?}"));
        assert_eq!(static_route.header.destination_prefix_length, 16);
        assert!(has(static_route, RouteAttribute::Priority(50)));
        assert!(has(static_route, gateway("192.168.5.1")));
        let onlink = v4_routes
            .iter()
            .find(|m| has(m, dst("192.168.5.0")))
            .unwrap_or_else(|| panic!("no 192.168.5.0/24 in {v4_routes:?}"));
        assert_eq!(onlink.header.scope, RouteScope::Link);
        let src: IpAddr = "10.1.0.2".parse().unwrap();
        assert!(
            has(onlink, RouteAttribute::PrefSource(src.into())),
            "{onlink:?}"
        );

        let v6_routes = routes(AddressFamily::Inet6);
        assert!(
            v6_routes
                .iter()
                .any(|m| m.header.destination_prefix_length == 0 && has(m, gateway("fd00::1"))),
            "{v6_routes:?}"
        );
    });
}

#[test]
fn nics_that_swap_names_get_them() {
    in_netns(|| {
        add_veth("eth1", MAC_A, "peer-a");
        add_veth("eth0", MAC_B, "peer-b");
        let (a, b) = (link_named("eth1").index, link_named("eth0").index);
        let config = NetworkConfig {
            interfaces: vec![
                interface("eth0", MAC_A, 1500, &[]),
                interface("eth1", MAC_B, 1400, &[]),
            ],
            routes: vec![],
        };
        assert_eq!(configure(&config), Response::Ok);
        assert_eq!(link_named("eth0").index, a);
        assert_eq!(link_named("eth1").index, b);
        assert_eq!(link_named("eth1").mtu, Some(1400));
    });
}

#[test]
fn a_nic_that_appears_late_is_waited_for() {
    in_netns(|| {
        // The thread inherits this thread's namespace. Whether the pair
        // exists before the first listing or after, configure() must find it.
        let creator = std::thread::spawn(|| add_veth("veth-a", MAC_A, "peer-a"));
        let config = NetworkConfig {
            interfaces: vec![interface("eth0", MAC_A, 1500, &["10.1.0.2/24"])],
            routes: vec![],
        };
        let response = configure(&config);
        creator.join().unwrap();
        assert_eq!(response, Response::Ok);
        assert!(link_named("eth0").up);
    });
}

#[test]
fn a_mac_no_nic_has_is_named_in_the_error() {
    in_netns(|| {
        add_veth("veth-a", MAC_A, "peer-a");
        let config = NetworkConfig {
            interfaces: vec![interface("eth0", MAC_B, 1500, &[])],
            routes: vec![],
        };
        let Response::Error { code, message } = configure(&config) else {
            panic!("configured without its NIC");
        };
        assert_eq!(code, ErrorCode::Internal);
        assert!(
            message.contains("eth0: no NIC has MAC 02:00:00:00:00:0b"),
            "{message}"
        );
        assert_eq!(link_named("veth-a").mtu, Some(1500));
    });
}

#[test]
fn a_kernel_refusal_names_the_route() {
    in_netns(|| {
        add_veth("veth-a", MAC_A, "peer-a");
        let config = NetworkConfig {
            interfaces: vec![interface("eth0", MAC_A, 1500, &["10.1.0.2/24"])],
            routes: vec![route(Some("10.9.0.0/16"), Some("172.31.0.1"), Some(5))],
        };
        let Response::Error { code, message } = configure(&config) else {
            panic!("a route through an unreachable gateway was added");
        };
        assert_eq!(code, ErrorCode::BadRequest);
        assert!(
            message.starts_with(
                "network configuration: route 10.9.0.0/16 via 172.31.0.1 dev eth0 metric 5: Network is unreachable"
            ),
            "{message}"
        );
    });
}

#[test]
fn an_invalid_config_changes_nothing() {
    in_netns(|| {
        add_veth("veth-a", MAC_A, "peer-a");
        let before = links();
        let mut config = docker_like();
        config.routes[0].device = "eth9".into();
        let Response::Error { code, message } = configure(&config) else {
            panic!("an invalid configuration was applied");
        };
        assert_eq!(code, ErrorCode::BadRequest);
        assert!(message.contains("eth9"), "{message}");
        assert_eq!(links(), before);
        assert!(
            addresses().iter().all(|a| !a.1.is_ipv4()),
            "{:?}",
            addresses()
        );
    });
}
#[test]
fn kernel_refusals_carry_the_errno_and_the_kernels_text() {
    in_netns(|| {
        add_veth("veth-a", MAC_A, "peer-a");
        let index = link_named("veth-a").index;
        let error = link::set_mtu(&mut Netlink::open().unwrap(), index, 70_000).unwrap_err();
        assert_eq!(error.errno(), Some(Errno::EINVAL));
        assert!(
            matches!(&error, super::netlink::NetlinkError::Kernel { message: Some(m), .. } if !m.is_empty()),
            "{error:?}"
        );
        assert!(
            error.to_string().starts_with("Invalid argument ("),
            "{error}"
        );
    });
}

#[test]
fn a_name_held_by_another_link_fails_the_rename() {
    in_netns(|| {
        add_veth("veth-a", MAC_A, "peer-a");
        let config = NetworkConfig {
            interfaces: vec![interface("peer-a", MAC_A, 1500, &[])],
            routes: vec![],
        };
        let Response::Error { code, message } = configure(&config) else {
            panic!("renamed over another link");
        };
        assert_eq!(code, ErrorCode::BadRequest);
        assert_eq!(
            message,
            "network configuration: peer-a: rename from veth-a: File exists"
        );
        assert_eq!(link_named("veth-a").mtu, Some(1500));
    });
}

/// A registry holding reserved NIC `placeholder`, set aside from `virtio7`.
fn registry_with(placeholder: MacAddr) -> Mutex<Registry> {
    let registry = Mutex::new(Registry::new());
    let nic = ReservedNic {
        ifname: "eth5".into(),
        mac: placeholder,
        device: "virtio7".into(),
    };
    lock(&registry).insert(&nic).unwrap();
    registry
}

#[test]
fn a_reserved_nic_is_bound_back_and_given_the_interfaces_mac() {
    in_netns(|| {
        let placeholder = reserved_mac(7);
        // Stands for the netdev virtio_net makes when the device is bound back.
        add_veth("eth5", &placeholder.to_string(), "peer-r");
        let index = link_named("eth5").index;
        let fake = FakeSysfs::new("take");
        let registry = registry_with(placeholder);
        let mut config = docker_like();
        config.interfaces[0].reserved_mac = Some(placeholder);
        assert_eq!(
            configure_with(&config, &fake.sysfs(), &registry),
            Response::Ok
        );
        assert_eq!(fake.written("bind"), "virtio7");
        let eth0 = link_named("eth0");
        assert_eq!(eth0.index, index);
        assert_eq!(eth0.mac, Some(MAC_A.parse::<MacAddr>().unwrap().0));
        assert_eq!(eth0.mtu, Some(9000));
        assert!(eth0.up);
        let v4: IpAddr = "10.1.0.2".parse().unwrap();
        assert!(
            addresses()
                .iter()
                .any(|a| (a.0, a.1, a.2) == (index, v4, 24)),
            "{:?}",
            addresses()
        );
        assert_eq!(
            lock(&registry).entries()[0].state,
            State::Bound {
                mac: config.interfaces[0].mac
            }
        );
        // Applied again: bound already, nothing more to bind, no error.
        std::fs::write(fake.root.join("bus/virtio/drivers/virtio_net/bind"), "").unwrap();
        assert_eq!(
            configure_with(&config, &fake.sysfs(), &registry),
            Response::Ok
        );
        assert_eq!(fake.written("bind"), "");
        assert_eq!(link_named("eth0").index, index);
    });
}

#[test]
fn an_unknown_reserved_mac_is_named_and_changes_nothing() {
    in_netns(|| {
        add_veth("eth5", &reserved_mac(7).to_string(), "peer-r");
        let before = links();
        let fake = FakeSysfs::new("unknown");
        let registry = registry_with(reserved_mac(7));
        let mut config = docker_like();
        config.interfaces[0].reserved_mac = Some(reserved_mac(9));
        let Response::Error { code, message } = configure_with(&config, &fake.sysfs(), &registry)
        else {
            panic!("configured with a reserved NIC the guest does not have");
        };
        assert_eq!(code, ErrorCode::BadRequest);
        assert_eq!(
            message,
            "network configuration: eth0: no reserved NIC has MAC 0e:68:75:6c:6c:09"
        );
        assert_eq!(links(), before);
        assert_eq!(fake.written("bind"), "");
        assert_eq!(
            lock(&registry).entries(),
            [Entry {
                placeholder: reserved_mac(7),
                device: "virtio7".into(),
                state: State::SetAside,
            }]
        );
    });
}
