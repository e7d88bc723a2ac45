//! Links: looked up by name, set up (with an MTU), deleted.

use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;

use super::socket::Netlink;
use super::NetError;

/// The index of the link called `name`.
pub(super) fn index_of(nl: &mut Netlink, name: &str) -> Result<u32, NetError> {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    let what = format!("look up link {name}");
    match nl.get(&what, RouteNetlinkMessage::GetLink(message)) {
        Ok(RouteNetlinkMessage::NewLink(link)) => Ok(link.header.index),
        Ok(other) => Err(NetError::Decode {
            what,
            reason: format!("unexpected answer {other:?}"),
        }),
        Err(e) if e.errno() == Some(libc::ENODEV) => Err(NetError::NoSuchLink(name.to_string())),
        Err(e) => Err(e),
    }
}

/// Sets link `index` up, and its MTU to `mtu` if given.
pub(super) fn set_up(
    nl: &mut Netlink,
    index: u32,
    name: &str,
    mtu: Option<u32>,
) -> Result<(), NetError> {
    let mut message = LinkMessage::default();
    message.header.index = index;
    message.header.flags = LinkFlags::Up;
    message.header.change_mask = LinkFlags::Up;
    if let Some(mtu) = mtu {
        message.attributes.push(LinkAttribute::Mtu(mtu));
    }
    nl.request(
        &format!("set link {name} up"),
        RouteNetlinkMessage::SetLink(message),
        0,
    )
}

/// Deletes link `index`; one already gone is no error.
pub(super) fn delete(nl: &mut Netlink, index: u32, name: &str) -> Result<(), NetError> {
    let mut message = LinkMessage::default();
    message.header.index = index;
    nl.request_tolerating(
        &format!("delete link {name}"),
        RouteNetlinkMessage::DelLink(message),
        &[libc::ENODEV],
    )
}

/// Every link of the namespace.
pub(super) fn dump(nl: &mut Netlink) -> Result<Vec<LinkMessage>, NetError> {
    let replies = nl.dump(
        "list links",
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
    )?;
    Ok(replies
        .into_iter()
        .filter_map(|reply| match reply {
            RouteNetlinkMessage::NewLink(link) => Some(link),
            _ => None,
        })
        .collect())
}
