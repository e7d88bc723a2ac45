//! The rtnetlink messages the agent sends, and the links it reads back.
//! A narrow stand-in for `RouteNetlinkMessage`: that one's parser of every
//! rtnetlink family and link kind added ~0.9 MB to the static agent; the
//! agent reads only four things of a link, parsed here by hand.

use netlink_packet_core::{
    DecodeError, Emitable, NetlinkDeserializable, NetlinkHeader, NetlinkSerializable, NlaBuffer,
    NlasIterator,
};
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::{LinkFlags, LinkHeader, LinkMessage};
use netlink_packet_route::route::RouteMessage;

use super::link::Link;

/// Length of `struct ifinfomsg`, before a link's attributes.
const IFINFOMSG_BYTES: usize = 16;
/// The link attributes the agent reads (`linux/if_link.h`).
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    GetLink(LinkMessage),
    SetLink(LinkMessage),
    NewAddress(AddressMessage),
    NewRoute(RouteMessage),
    /// Read: a link of a dump or a notification.
    Link(Link),
    /// Read: a type the agent does not use (its `nlmsg_type`).
    Other(u16),
    /// The tests create links, and read addresses and routes; the agent does not.
    #[cfg(test)]
    NewLink(LinkMessage),
    #[cfg(test)]
    GetAddress(AddressMessage),
    #[cfg(test)]
    GetRoute(RouteMessage),
}

impl Message {
    fn body(&self) -> Option<&dyn Emitable> {
        match self {
            Message::GetLink(m) | Message::SetLink(m) => Some(m),
            Message::NewAddress(m) => Some(m),
            Message::NewRoute(m) => Some(m),
            #[cfg(test)]
            Message::NewLink(m) => Some(m),
            #[cfg(test)]
            Message::GetAddress(m) => Some(m),
            #[cfg(test)]
            Message::GetRoute(m) => Some(m),
            Message::Link(_) | Message::Other(_) => None,
        }
    }
}

impl NetlinkSerializable for Message {
    fn message_type(&self) -> u16 {
        match self {
            Message::Link(_) => libc::RTM_NEWLINK,
            Message::GetLink(_) => libc::RTM_GETLINK,
            Message::SetLink(_) => libc::RTM_SETLINK,
            Message::NewAddress(_) => libc::RTM_NEWADDR,
            Message::NewRoute(_) => libc::RTM_NEWROUTE,
            Message::Other(kind) => *kind,
            #[cfg(test)]
            Message::NewLink(_) => libc::RTM_NEWLINK,
            #[cfg(test)]
            Message::GetAddress(_) => libc::RTM_GETADDR,
            #[cfg(test)]
            Message::GetRoute(_) => libc::RTM_GETROUTE,
        }
    }

    fn buffer_len(&self) -> usize {
        self.body().map_or(0, |b| b.buffer_len())
    }

    fn serialize(&self, buffer: &mut [u8]) {
        if let Some(body) = self.body() {
            body.emit(buffer)
        }
    }
}

impl NetlinkDeserializable for Message {
    type Error = DecodeError;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, DecodeError> {
        Ok(match header.message_type {
            libc::RTM_NEWLINK => Message::Link(parse_link(payload)?),
            #[cfg(test)]
            libc::RTM_NEWADDR => {
                use netlink_packet_core::Parseable;
                Message::NewAddress(AddressMessage::parse(payload)?)
            }
            #[cfg(test)]
            libc::RTM_NEWROUTE => {
                use netlink_packet_core::Parseable;
                Message::NewRoute(RouteMessage::parse(payload)?)
            }
            other => Message::Other(other),
        })
    }
}

/// A link's index, flags, name, hardware address and MTU.
fn parse_link(payload: &[u8]) -> Result<Link, DecodeError> {
    let header = LinkHeader::parse(payload)?;
    let mut link = Link {
        index: header.index,
        name: String::new(),
        mac: None,
        loopback: header.flags.contains(LinkFlags::Loopback),
        up: header.flags.contains(LinkFlags::Up),
        mtu: None,
    };
    let attributes = payload.get(IFINFOMSG_BYTES..).unwrap_or_default();
    for nla in NlasIterator::new(attributes) {
        let nla: NlaBuffer<&[u8]> = nla?;
        let value = nla.value();
        match nla.kind() {
            IFLA_ADDRESS => link.mac = value.try_into().ok(),
            IFLA_IFNAME => {
                let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
                link.name = String::from_utf8_lossy(&value[..end]).into_owned();
            }
            IFLA_MTU => link.mtu = value.try_into().ok().map(u32::from_ne_bytes),
            _ => {}
        }
    }
    Ok(link)
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
    use netlink_packet_route::link::LinkAttribute;

    use super::*;

    #[test]
    fn a_link_is_read_back_and_other_types_are_skipped() {
        let mut link = LinkMessage::default();
        link.header.index = 7;
        link.header.flags = LinkFlags::Up;
        link.attributes = vec![
            LinkAttribute::IfName("eth0".into()),
            LinkAttribute::Address(vec![2, 0, 0, 0, 0, 0xa]),
            LinkAttribute::Mtu(9000),
        ];
        let mut packet = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::InnerMessage(Message::NewLink(link)),
        );
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        let parsed = NetlinkMessage::<Message>::deserialize(&bytes).unwrap();
        let expected = Link {
            index: 7,
            name: "eth0".into(),
            mac: Some([2, 0, 0, 0, 0, 0xa]),
            loopback: false,
            up: true,
            mtu: Some(9000),
        };
        assert_eq!(
            parsed.payload,
            NetlinkPayload::InnerMessage(Message::Link(expected))
        );
        bytes[4..6].copy_from_slice(&libc::RTM_NEWNEIGH.to_ne_bytes());
        let parsed = NetlinkMessage::<Message>::deserialize(&bytes).unwrap();
        assert_eq!(
            parsed.payload,
            NetlinkPayload::InnerMessage(Message::Other(libc::RTM_NEWNEIGH))
        );
    }

    #[test]
    fn a_truncated_link_is_an_error() {
        let mut header = NetlinkHeader::default();
        header.message_type = libc::RTM_NEWLINK;
        assert!(Message::deserialize(&header, &[0; 8]).is_err());
        // An attribute whose length runs past the message.
        let mut bytes = vec![0u8; IFINFOMSG_BYTES];
        bytes.extend_from_slice(&[64, 0, 3, 0, b'e']);
        assert!(Message::deserialize(&header, &bytes).is_err());
    }
}
