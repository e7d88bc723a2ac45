//! What the engine put into the namespace: links, their global addresses
//! and the main-table routes through them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use agent_protocol::network::{IpCidr, MacAddr, Route};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkLayerType, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::socket::Netlink;
use super::{link, HostInterface, NetError, TAP_PREFIX};

/// Every link of the calling thread's network namespace except `lo`,
/// hull's own taps and the kernel's down fallback tunnels (`sit0`,
/// `tunl0`, `ip6tnl0`… exist in every namespace), with its global-scope addresses and the main-table
/// routes through it that the kernel did not add itself.
pub fn discover() -> Result<Vec<HostInterface>, NetError> {
    let mut nl = Netlink::open()?;
    let mut interfaces: Vec<HostInterface> = link::dump(&mut nl)?
        .iter()
        .filter(|m| !is_down_tunnel(m))
        .filter_map(interface_of)
        .filter(|i| i.name != "lo" && !i.name.starts_with(TAP_PREFIX))
        .collect();
    for address in dump_addresses(&mut nl)? {
        let Some(cidr) = global_address(&address) else {
            continue;
        };
        if let Some(i) = interfaces
            .iter_mut()
            .find(|i| i.index == address.header.index)
        {
            i.addresses.push(cidr);
        }
    }
    for route in dump_routes(&mut nl)? {
        let Some(oif) = route.attributes.iter().find_map(|a| match a {
            RouteAttribute::Oif(index) => Some(*index),
            _ => None,
        }) else {
            continue; // multipath or unreachable: no single device
        };
        if let Some(i) = interfaces.iter_mut().find(|i| i.index == oif) {
            if let Some(route) = route_of(&route, &i.name) {
                i.routes.push(route);
            }
        }
    }
    Ok(interfaces)
}

/// A link without an Ethernet layer that is down: one of the fallback
/// tunnel devices the kernel puts in each namespace, not the engine's.
fn is_down_tunnel(message: &LinkMessage) -> bool {
    message.header.link_layer_type != LinkLayerType::Ether
        && !message.header.flags.contains(LinkFlags::Up)
}

fn interface_of(message: &LinkMessage) -> Option<HostInterface> {
    let mut name = None;
    let mut kind = None;
    let mut address = None;
    let mut mtu = 0;
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Address(a) => address = Some(a.as_slice()),
            LinkAttribute::Mtu(m) => mtu = *m,
            LinkAttribute::LinkInfo(infos) => {
                kind = infos.iter().find_map(|info| match info {
                    LinkInfo::Kind(k) => Some(k.to_string()),
                    _ => None,
                })
            }
            _ => {}
        }
    }
    let mac = match (message.header.link_layer_type, address) {
        (LinkLayerType::Ether, Some(&[a, b, c, d, e, f])) => Some(MacAddr([a, b, c, d, e, f])),
        _ => None,
    };
    Some(HostInterface {
        name: name?,
        index: message.header.index,
        kind,
        mac,
        mtu,
        addresses: Vec::new(),
        routes: Vec::new(),
    })
}

fn dump_addresses(nl: &mut Netlink) -> Result<Vec<AddressMessage>, NetError> {
    let replies = nl.dump(
        "list addresses",
        RouteNetlinkMessage::GetAddress(AddressMessage::default()),
    )?;
    Ok(replies
        .into_iter()
        .filter_map(|reply| match reply {
            RouteNetlinkMessage::NewAddress(a) => Some(a),
            _ => None,
        })
        .collect())
}

/// A global-scope address (for IPv4 the local one, not a point-to-point
/// peer).
fn global_address(message: &AddressMessage) -> Option<IpCidr> {
    if message.header.scope != AddressScope::Universe {
        return None;
    }
    let local = message.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let address = local.or_else(|| {
        message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })?;
    if let IpAddr::V6(v6) = address {
        if v6.is_unicast_link_local() {
            return None;
        }
    }
    Some(IpCidr {
        address,
        prefix_len: message.header.prefix_len,
    })
}

fn dump_routes(nl: &mut Netlink) -> Result<Vec<RouteMessage>, NetError> {
    let replies = nl.dump(
        "list routes",
        RouteNetlinkMessage::GetRoute(RouteMessage::default()),
    )?;
    Ok(replies
        .into_iter()
        .filter_map(|reply| match reply {
            RouteNetlinkMessage::NewRoute(r) => Some(r),
            _ => None,
        })
        .collect())
}

fn ip_of(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// The route as the agent takes it, if it is a unicast route of the main
/// table that the kernel did not add for an address of its own.
fn route_of(message: &RouteMessage, device: &str) -> Option<Route> {
    let header = &message.header;
    let table = message
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(header.table));
    if table != u32::from(RouteHeader::RT_TABLE_MAIN)
        || header.protocol == RouteProtocol::Kernel
        || header.kind != RouteType::Unicast
        || !matches!(
            header.address_family,
            AddressFamily::Inet | AddressFamily::Inet6
        )
    {
        return None;
    }
    let mut route = Route {
        destination: None,
        gateway: None,
        device: device.to_string(),
        metric: None,
        source: None,
    };
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(a) if header.destination_prefix_length > 0 => {
                route.destination = ip_of(a).map(|address| IpCidr {
                    address,
                    prefix_len: header.destination_prefix_length,
                });
            }
            RouteAttribute::Gateway(a) => route.gateway = ip_of(a),
            RouteAttribute::Priority(p) => route.metric = Some(*p),
            RouteAttribute::PrefSource(a) => route.source = ip_of(a),
            _ => {}
        }
    }
    if route.destination.is_none() && route.gateway.is_none() {
        // A default route straight out of the device: the family must be
        // said by the destination, there being no gateway to say it.
        let address = match header.address_family {
            AddressFamily::Inet => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            _ => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        route.destination = Some(IpCidr {
            address,
            prefix_len: 0,
        });
    }
    Some(route)
}
