//! Addresses and routes: one request each, created or replaced, so that
//! applying a configuration twice is not an error.

use std::net::{IpAddr, Ipv4Addr};

use agent_protocol::network::{IpCidr, Route};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::route::{
    RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::AddressFamily;

use super::message::Message;
use super::netlink::{Netlink, NetlinkError};

fn family(address: IpAddr) -> AddressFamily {
    match address {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// The IPv4 broadcast address of `cidr`; none for /31 and /32 (RFC 3021).
fn broadcast(address: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Addr> {
    if prefix_len >= 31 {
        return None;
    }
    let host_mask = u32::MAX >> prefix_len;
    Some(Ipv4Addr::from(u32::from(address) | host_mask))
}

/// The message that adds `cidr` to link `index`; an IPv6 address skips
/// duplicate address detection so that it is usable at once.
pub fn address_message(index: u32, cidr: &IpCidr) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.family = family(cidr.address);
    message.header.prefix_len = cidr.prefix_len;
    message.header.scope = AddressScope::Universe;
    message.header.index = index;
    message
        .attributes
        .push(AddressAttribute::Local(cidr.address));
    message
        .attributes
        .push(AddressAttribute::Address(cidr.address));
    match cidr.address {
        IpAddr::V4(v4) => {
            if let Some(brd) = broadcast(v4, cidr.prefix_len) {
                message.attributes.push(AddressAttribute::Broadcast(brd));
            }
        }
        IpAddr::V6(_) => {
            message.header.flags = AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
    }
    message
}

pub fn add_address(netlink: &mut Netlink, index: u32, cidr: &IpCidr) -> Result<(), NetlinkError> {
    let message = Message::NewAddress(address_message(index, cidr));
    netlink.request(message, NLM_F_CREATE | NLM_F_REPLACE)
}

/// The family of a route: its destination's, else its gateway's, else its
/// source's; a default route with none of them is IPv4's.
fn route_family(route: &Route) -> IpAddr {
    route
        .destination
        .map(|d| d.address)
        .or(route.gateway)
        .or(route.source)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// The message that adds `route` through link `index` to the main table:
/// without a gateway it is on-link (scope link); without a destination it
/// is the default route (0.0.0.0/0 or ::/0).
pub fn route_message(index: u32, route: &Route) -> RouteMessage {
    let mut message = RouteMessage::default();
    message.header.address_family = family(route_family(route));
    message.header.table = RouteHeader::RT_TABLE_MAIN;
    message.header.protocol = RouteProtocol::Boot;
    message.header.kind = RouteType::Unicast;
    message.header.scope = match route.gateway {
        Some(_) => RouteScope::Universe,
        None => RouteScope::Link,
    };
    if let Some(destination) = route.destination {
        message.header.destination_prefix_length = destination.prefix_len;
        if destination.prefix_len > 0 {
            message
                .attributes
                .push(RouteAttribute::Destination(destination.address.into()));
        }
    }
    if let Some(gateway) = route.gateway {
        message
            .attributes
            .push(RouteAttribute::Gateway(gateway.into()));
    }
    message.attributes.push(RouteAttribute::Oif(index));
    if let Some(metric) = route.metric {
        message.attributes.push(RouteAttribute::Priority(metric));
    }
    if let Some(source) = route.source {
        message
            .attributes
            .push(RouteAttribute::PrefSource(source.into()));
    }
    message
}

pub fn add_route(netlink: &mut Netlink, index: u32, route: &Route) -> Result<(), NetlinkError> {
    let message = Message::NewRoute(route_message(index, route));
    netlink.request(message, NLM_F_CREATE | NLM_F_REPLACE)
}

/// `default via 10.0.0.1 dev eth0 metric 100`, as `ip route` prints it.
pub fn describe(route: &Route) -> String {
    let mut text = match &route.destination {
        Some(d) => d.to_string(),
        None => "default".to_string(),
    };
    if let Some(gateway) = route.gateway {
        text.push_str(&format!(" via {gateway}"));
    }
    text.push_str(&format!(" dev {}", route.device));
    if let Some(metric) = route.metric {
        text.push_str(&format!(" metric {metric}"));
    }
    if let Some(source) = route.source {
        text.push_str(&format!(" src {source}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_covers_the_host_part() {
        let a: Ipv4Addr = "10.88.0.2".parse().unwrap();
        assert_eq!(broadcast(a, 16), Some("10.88.255.255".parse().unwrap()));
        assert_eq!(broadcast(a, 0), Some(Ipv4Addr::BROADCAST));
        assert_eq!(broadcast(a, 31), None);
        assert_eq!(broadcast(a, 32), None);
    }

    #[test]
    fn routes_are_described_like_ip_route() {
        let route = Route {
            destination: None,
            gateway: Some("10.0.0.1".parse().unwrap()),
            device: "eth0".into(),
            metric: Some(100),
            source: None,
        };
        assert_eq!(describe(&route), "default via 10.0.0.1 dev eth0 metric 100");
    }

    #[test]
    fn a_default_route_takes_its_gateways_family_and_an_onlink_one_scope_link() {
        let route = Route {
            destination: None,
            gateway: Some("fd00::1".parse().unwrap()),
            device: "eth0".into(),
            metric: None,
            source: None,
        };
        let m = route_message(7, &route);
        assert_eq!(m.header.address_family, AddressFamily::Inet6);
        assert_eq!(m.header.destination_prefix_length, 0);
        assert_eq!(m.header.scope, RouteScope::Universe);
        let onlink = Route {
            destination: Some(IpCidr {
                address: "10.1.0.0".parse().unwrap(),
                prefix_len: 24,
            }),
            gateway: None,
            ..route
        };
        let m = route_message(7, &onlink);
        assert_eq!(m.header.address_family, AddressFamily::Inet);
        assert_eq!(m.header.scope, RouteScope::Link);
        assert!(m.attributes.contains(&RouteAttribute::Oif(7)));
    }
}
