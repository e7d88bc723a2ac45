//! Native tests: each runs in a network namespace of its own (root needed;
//! skipped with a note otherwise) with veths made through netlink.

mod fixture;

use std::io::Write;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;

use agent_protocol::network::{IpCidr, MacAddr, Route};
use netlink_packet_route::link::LinkFlags;
use netlink_packet_route::tc::TcAttribute;
use nix::sys::socket::MsgFlags;

use super::socket::Netlink;
use super::tap::{self, TunKind, VNET_HDR_BYTES};
use super::*;
use fixture::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cidr(s: &str, prefix_len: u8) -> IpCidr {
    IpCidr {
        address: ip(s),
        prefix_len,
    }
}

/// veth0 (10.1.0.2/24, fd00::2/64; default route via 10.1.0.1 metric 100,
/// 192.168.50.0/24 via 10.1.0.1) paired with peer0 (no addresses).
fn engine_like(nl: &mut Netlink) -> (u32, u32) {
    let (veth, peer) = add_veth(nl, "veth0", "peer0");
    add_address(nl, veth, ip("10.1.0.2"), 24);
    add_address(nl, veth, ip("fd00::2"), 64);
    add_route(nl, veth, None, ip("10.1.0.1"), 100);
    add_route(nl, veth, Some((ip("192.168.50.0"), 24)), ip("10.1.0.1"), 0);
    (veth, peer)
}

fn has_ingress(nl: &mut Netlink, index: u32) -> bool {
    tc::qdiscs(nl, index)
        .unwrap()
        .iter()
        .any(|q| q.attributes.contains(&TcAttribute::Kind("ingress".into())))
}

fn redirects(nl: &mut Netlink, index: u32) -> Vec<u32> {
    tc::ingress_filters(nl, index)
        .unwrap()
        .iter()
        .filter_map(tc::redirect_target)
        .collect()
}

#[test]
fn discover_finds_the_veth_its_addresses_and_routes() {
    in_new_netns(|| {
        let mut nl = Netlink::open().unwrap();
        let (veth, _) = engine_like(&mut nl);
        let found = discover().unwrap();
        assert!(found.iter().all(|i| i.name != "lo"), "{found:?}");
        let eth = find(&found, "veth0");
        assert_eq!(eth.index, veth);
        assert_eq!(eth.kind.as_deref(), Some("veth"));
        assert_eq!(eth.mtu, 1500);
        let mac = eth.mac.expect("a veth has a MAC");
        assert_eq!(mac.0[0] & 1, 0, "unicast");
        assert_eq!(
            eth.addresses,
            vec![cidr("10.1.0.2", 24), cidr("fd00::2", 64)]
        );
        // No kernel routes (10.1.0.0/24, fd00::/64, fe80::/64).
        let default = Route {
            destination: None,
            gateway: Some(ip("10.1.0.1")),
            device: "veth0".into(),
            metric: Some(100),
            source: None,
        };
        let static_route = Route {
            destination: Some(cidr("192.168.50.0", 24)),
            metric: None,
            ..default.clone()
        };
        assert_eq!(eth.routes.len(), 2, "{:?}", eth.routes);
        assert!(eth.routes.contains(&default), "{:?}", eth.routes);
        assert!(eth.routes.contains(&static_route), "{:?}", eth.routes);
        assert!(find(&found, "peer0").addresses.is_empty());
    });
}

#[test]
fn wire_joins_the_veth_and_a_tap_both_ways_and_teardown_undoes_it() {
    in_new_netns(|| {
        let mut nl = Netlink::open().unwrap();
        let (veth, peer) = engine_like(&mut nl);
        let found = discover().unwrap();
        let eth = find(&found, "veth0").clone();
        let wiring = wire(std::slice::from_ref(&eth)).unwrap();

        let [tap] = wiring.taps() else {
            panic!("one tap expected: {:?}", wiring.taps());
        };
        assert_eq!(tap.name(), "hulltap0");
        assert_eq!(tap.host_name(), "veth0");
        assert_eq!(Some(tap.mac()), eth.mac);
        assert_eq!(tap.mtu(), 1500);
        let tap_index = link::index_of(&mut nl, "hulltap0").unwrap();
        let tap_link = link::dump(&mut nl)
            .unwrap()
            .into_iter()
            .find(|l| l.header.index == tap_index)
            .unwrap();
        assert!(tap_link.header.flags.contains(LinkFlags::Up));
        assert!(has_ingress(&mut nl, veth) && has_ingress(&mut nl, tap_index));
        assert_eq!(redirects(&mut nl, veth), vec![tap_index]);
        assert_eq!(redirects(&mut nl, tap_index), vec![veth]);
        // Discovery leaves hull's own taps out.
        assert!(discover().unwrap().iter().all(|i| i.name != "hulltap0"));

        let config = wiring.network_config();
        config.validate().unwrap();
        assert_eq!(config.interfaces.len(), 1);
        assert_eq!(config.interfaces[0].name, "veth0");
        assert_eq!(Some(config.interfaces[0].mac), eth.mac);
        assert_eq!(config.interfaces[0].addresses, eth.addresses);
        assert_eq!(config.routes.len(), 2);

        // Guest to host: a frame written to the tap leaves through veth0.
        let guest_mac = tap.mac();
        let peer_mac = find(&found, "peer0").mac.unwrap();
        let at_peer = packet_socket(peer);
        let out = frame(peer_mac, guest_mac, b"from the guest");
        let mut with_header = vec![0u8; VNET_HDR_BYTES];
        with_header.extend_from_slice(&out);
        let mut tap_file = std::fs::File::from(tap.as_fd().try_clone_to_owned().unwrap());
        tap_file.write_all(&with_header).unwrap();
        let seen = read_until(&at_peer, |f| f.starts_with(&out));
        assert_eq!(&seen[..out.len()], &out[..]);

        // Host to guest: a frame sent to veth0 comes out of the tap.
        let inbound = frame(guest_mac, peer_mac, b"to the guest");
        nix::sys::socket::send(at_peer.as_raw_fd(), &inbound, MsgFlags::empty()).unwrap();
        let got = read_until(&tap_file, |f| {
            f.len() > VNET_HDR_BYTES && f[VNET_HDR_BYTES..].starts_with(&inbound)
        });
        assert_eq!(
            &got[VNET_HDR_BYTES..VNET_HDR_BYTES + inbound.len()],
            &inbound[..]
        );
        drop(tap_file);

        wiring.teardown().unwrap();
        assert!(matches!(
            link::index_of(&mut nl, "hulltap0"),
            Err(NetError::NoSuchLink(_))
        ));
        assert!(!has_ingress(&mut nl, veth));
        assert!(redirects(&mut nl, veth).is_empty());
        // The veth is the engine's: untouched.
        assert_eq!(find(&discover().unwrap(), "veth0"), &eth);
    });
}

#[test]
fn a_failure_midway_leaves_nothing_and_drop_tears_down() {
    in_new_netns(|| {
        let mut nl = Netlink::open().unwrap();
        let (veth0, _) = add_veth(&mut nl, "veth0", "peer0");
        let (veth1, _) = add_veth(&mut nl, "veth1", "peer1");
        let found = discover().unwrap();
        let both = [find(&found, "veth0").clone(), find(&found, "veth1").clone()];
        // A link already called hulltap1 makes the second tap fail.
        add_veth(&mut nl, "hulltap1", "blocker1");
        let e = wire(&both).unwrap_err();
        assert!(
            matches!(&e, NetError::Tap { name, .. } if name == "hulltap1"),
            "{e}"
        );
        assert!(matches!(
            link::index_of(&mut nl, "hulltap0"),
            Err(NetError::NoSuchLink(_))
        ));
        assert!(!has_ingress(&mut nl, veth0) && !has_ingress(&mut nl, veth1));

        let wiring = wire(&both[..1]).unwrap();
        assert!(has_ingress(&mut nl, veth0));
        drop(wiring);
        assert!(!has_ingress(&mut nl, veth0));
        assert!(link::index_of(&mut nl, "hulltap0").is_err());
    });
}

#[test]
fn a_link_without_an_ethernet_address_is_refused() {
    in_new_netns(|| {
        let _tun = tap::open("l3tun0", TunKind::L3Tun).unwrap();
        // Down, it is taken for one of the kernel's fallback tunnels
        // (sit0, tunl0…) and left out; up, it is the engine's and refused.
        let found = discover().unwrap();
        assert!(found.iter().all(|i| i.name != "l3tun0"), "{found:?}");
        let mut nl = Netlink::open().unwrap();
        let index = link::index_of(&mut nl, "l3tun0").unwrap();
        link::set_up(&mut nl, index, "l3tun0", None).unwrap();
        let found = discover().unwrap();
        let l3 = find(&found, "l3tun0");
        assert_eq!(l3.mac, None);
        let e = wire(std::slice::from_ref(l3)).unwrap_err();
        assert!(
            matches!(&e, NetError::NotEthernet { name, .. } if name == "l3tun0"),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("l3tun0 (tun) has no Ethernet address"),
            "{e}"
        );
        assert!(link::index_of(&mut nl, "hulltap0").is_err());
    });
}

#[test]
fn too_many_interfaces_are_refused() {
    let one = HostInterface {
        name: "eth0".into(),
        index: 2,
        kind: Some("veth".into()),
        mac: Some(MacAddr([2, 0, 0, 0, 0, 1])),
        mtu: 1500,
        addresses: Vec::new(),
        routes: Vec::new(),
    };
    let many = vec![one; agent_protocol::network::MAX_INTERFACES + 1];
    let e = wire(&many).unwrap_err();
    assert!(
        matches!(
            e,
            NetError::TooManyInterfaces {
                count: 17,
                limit: 16
            }
        ),
        "{e}"
    );
}

#[test]
fn new_netns_gives_an_empty_namespace_with_loopback_up() {
    let outcome = std::thread::spawn(|| {
        let before = std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
        if new_netns().is_err() {
            println!("note: cannot make a network namespace (not root?), skipping");
            return;
        }
        let after = std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
        assert_ne!(before, after);
        assert!(discover().unwrap().is_empty());
        let mut nl = Netlink::open().unwrap();
        let lo = link::index_of(&mut nl, "lo").unwrap();
        let links = link::dump(&mut nl).unwrap();
        let lo = links.iter().find(|l| l.header.index == lo).unwrap();
        assert!(lo.header.flags.contains(LinkFlags::Up));
    })
    .join();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn the_configuration_puts_gatewayless_routes_first_and_is_valid() {
    let route = |destination: Option<IpCidr>, gateway: Option<IpAddr>| Route {
        destination,
        gateway,
        device: "eth0".into(),
        metric: None,
        source: None,
    };
    let default = route(None, Some(ip("169.254.1.1")));
    let link_scope = route(Some(cidr("169.254.1.1", 32)), None);
    let eth0 = HostInterface {
        name: "eth0".into(),
        index: 2,
        kind: Some("veth".into()),
        mac: Some(MacAddr([2, 0, 0, 0, 0, 1])),
        mtu: 1450,
        addresses: vec![cidr("10.1.0.2", 32)],
        routes: vec![default.clone(), link_scope.clone()],
    };
    let config = wire::config_of(std::slice::from_ref(&eth0)).unwrap();
    assert_eq!(config.routes, vec![link_scope, default]);
    assert_eq!(config.interfaces[0].mtu, 1450);
    let mut bad = eth0;
    bad.mtu = 0;
    assert!(matches!(wire::config_of(&[bad]), Err(NetError::Invalid(_))));
}

#[test]
fn leftovers_of_a_killed_sandbox_are_removed_from_the_namespace() {
    in_new_netns(|| {
        let mut nl = Netlink::open().unwrap();
        let (veth0, _) = add_veth(&mut nl, "veth0", "peer0");
        let found = discover().unwrap();
        // A sandbox killed with its wiring in place: nothing undone.
        std::mem::forget(wire(&[find(&found, "veth0").clone()]).unwrap());
        assert!(has_ingress(&mut nl, veth0));
        let netns = format!(
            "/proc/{}/task/{}/ns/net",
            std::process::id(),
            nix::unistd::gettid()
        );
        let links = ["veth0".to_string(), "gone0".to_string()];
        super::remove_leftovers(std::path::Path::new(&netns), &links).unwrap();
        assert!(!has_ingress(&mut nl, veth0));
        assert!(link::index_of(&mut nl, "hulltap0").is_err());
        // Twice is no error.
        super::remove_leftovers(std::path::Path::new(&netns), &links).unwrap();
    });
}

#[test]
fn a_reserved_tap_is_joined_to_an_interface_that_came_later() {
    in_new_netns(|| {
        let wiring = super::reserve().unwrap();
        let tap = &wiring.taps()[0];
        assert_eq!(tap.name(), "hulltap0");
        assert!(agent_protocol::network::is_reserved_mac(&tap.mac()));
        assert!(wiring.network_config().interfaces.is_empty());
        // The reserved tap is hull's: discovery leaves it out.
        assert!(discover().unwrap().is_empty());

        let mut nl = Netlink::open().unwrap();
        let (veth0, _) = add_veth(&mut nl, "veth0", "peer0");
        let found = discover().unwrap();
        let config = super::wire_late("hulltap0", find(&found, "veth0")).unwrap();
        assert_eq!(config.interfaces.len(), 1);
        assert_eq!(config.interfaces[0].name, "veth0");
        assert_eq!(
            config.interfaces[0].reserved_mac,
            Some(agent_protocol::network::reserved_mac(0))
        );
        let tap_index = link::index_of(&mut nl, "hulltap0").unwrap();
        assert!(has_ingress(&mut nl, veth0) && has_ingress(&mut nl, tap_index));
        // A second join of the same tap fails and leaves the first intact.
        assert!(super::wire_late("hulltap0", find(&found, "veth0")).is_err());
        assert!(has_ingress(&mut nl, veth0) && has_ingress(&mut nl, tap_index));
        assert_eq!(redirects(&mut nl, veth0), [tap_index]);
        drop(wiring);
        assert!(link::index_of(&mut nl, "hulltap0").is_err());
    });
}
