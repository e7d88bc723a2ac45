//! Links: listed by a dump, changed one attribute per request so that an
//! error names the step that failed.

use agent_protocol::network::MacAddr;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};

use super::message::Message;
use super::netlink::{Netlink, NetlinkError};

/// One link as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// The hardware address, when it is an Ethernet one.
    pub mac: Option<[u8; 6]>,
    pub loopback: bool,
    pub up: bool,
    pub mtu: Option<u32>,
}

/// Every link of the namespace.
pub fn list(netlink: &mut Netlink) -> Result<Vec<Link>, NetlinkError> {
    let replies = netlink.dump(Message::GetLink(LinkMessage::default()))?;
    Ok(replies
        .into_iter()
        .filter_map(|reply| match reply {
            Message::Link(link) => Some(link),
            _ => None,
        })
        .collect())
}

fn set(
    netlink: &mut Netlink,
    index: u32,
    edit: impl FnOnce(&mut LinkMessage),
) -> Result<(), NetlinkError> {
    let mut message = LinkMessage::default();
    message.header.index = index;
    edit(&mut message);
    netlink.request(Message::SetLink(message), 0)
}

/// Sets the link administratively up or down.
pub fn set_up(netlink: &mut Netlink, index: u32, up: bool) -> Result<(), NetlinkError> {
    set(netlink, index, |m| {
        m.header.change_mask = LinkFlags::Up;
        if up {
            m.header.flags = LinkFlags::Up;
        }
    })
}

/// Renames the link (it must be down).
pub fn rename(netlink: &mut Netlink, index: u32, name: &str) -> Result<(), NetlinkError> {
    set(netlink, index, |m| {
        m.attributes.push(LinkAttribute::IfName(name.to_string()))
    })
}

pub fn set_mtu(netlink: &mut Netlink, index: u32, mtu: u32) -> Result<(), NetlinkError> {
    set(netlink, index, |m| {
        m.attributes.push(LinkAttribute::Mtu(mtu))
    })
}

/// Sets the link's hardware address (`IFLA_ADDRESS`).
pub fn set_mac(netlink: &mut Netlink, index: u32, mac: &MacAddr) -> Result<(), NetlinkError> {
    set(netlink, index, |m| {
        m.attributes.push(LinkAttribute::Address(mac.0.to_vec()))
    })
}
