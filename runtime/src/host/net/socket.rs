//! A synchronous rtnetlink socket: one request at a time, answered by an
//! acknowledgement or a dump. netlink-packet-route builds and parses the
//! messages; no async runtime is involved.

use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::NetError;

/// How often a dump the kernel marked inconsistent (the tables changed
/// while it was read) is started again before giving up.
const DUMP_ATTEMPTS: usize = 3;

pub(super) struct Netlink {
    socket: Socket,
    sequence: u32,
}

fn socket_error(what: &'static str) -> impl FnOnce(std::io::Error) -> NetError {
    move |source| NetError::Socket { what, source }
}

impl Netlink {
    /// A route netlink socket in the calling thread's network namespace.
    pub(super) fn open() -> Result<Self, NetError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(socket_error("open"))?;
        socket.bind_auto().map_err(socket_error("bind"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(socket_error("connect"))?;
        Ok(Netlink {
            socket,
            sequence: 0,
        })
    }

    fn send(&mut self, message: RouteNetlinkMessage, flags: u16) -> Result<u32, NetError> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut request = NetlinkMessage::from(message);
        request.header.flags = NLM_F_REQUEST | flags;
        request.header.sequence_number = self.sequence;
        request.finalize();
        let mut buf = vec![0u8; request.buffer_len()];
        request.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(socket_error("send"))?;
        Ok(self.sequence)
    }

    /// The replies to request `sequence`, one datagram at a time, until
    /// `done` says the request is answered.
    fn receive(
        &mut self,
        what: &str,
        sequence: u32,
        mut on_message: impl FnMut(NetlinkMessage<RouteNetlinkMessage>) -> Result<bool, NetError>,
    ) -> Result<(), NetError> {
        loop {
            let (datagram, _) = self
                .socket
                .recv_from_full()
                .map_err(socket_error("receive"))?;
            let mut offset = 0;
            while offset < datagram.len() {
                let message =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&datagram[offset..])
                        .map_err(|e| NetError::Decode {
                            what: what.to_string(),
                            reason: e.to_string(),
                        })?;
                let length = message.header.length as usize;
                if length == 0 {
                    return Err(NetError::Decode {
                        what: what.to_string(),
                        reason: "zero-length message".into(),
                    });
                }
                offset += length.next_multiple_of(4);
                if message.header.sequence_number != sequence {
                    continue;
                }
                if on_message(message)? {
                    return Ok(());
                }
            }
        }
    }

    /// Sends a request with `flags` (`NLM_F_CREATE`…) and waits for its
    /// acknowledgement; a refusal is [`NetError::Kernel`] with its errno.
    pub(super) fn request(
        &mut self,
        what: &str,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<(), NetError> {
        let sequence = self.send(message, NLM_F_ACK | flags)?;
        self.receive(what, sequence, |reply| match reply.payload {
            NetlinkPayload::Error(error) => match error.code {
                None => Ok(true),
                Some(_) => Err(NetError::Kernel {
                    what: what.to_string(),
                    source: error.to_io(),
                }),
            },
            NetlinkPayload::Done(_) => Ok(true),
            _ => Ok(false),
        })
    }

    /// [`Self::request`] that takes the errnos in `tolerated` (an object
    /// already gone) as success.
    pub(super) fn request_tolerating(
        &mut self,
        what: &str,
        message: RouteNetlinkMessage,
        tolerated: &[i32],
    ) -> Result<(), NetError> {
        match self.request(what, message, 0) {
            Err(e) if e.errno().is_some_and(|errno| tolerated.contains(&errno)) => Ok(()),
            other => other,
        }
    }

    /// Sends a dump request and collects its answer.
    pub(super) fn dump(
        &mut self,
        what: &str,
        message: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, NetError> {
        let mut attempt = 1;
        loop {
            let sequence = self.send(message.clone(), NLM_F_DUMP)?;
            let mut out = Vec::new();
            let mut interrupted = false;
            self.receive(what, sequence, |reply| {
                interrupted |= reply.header.flags & NLM_F_DUMP_INTR != 0;
                match reply.payload {
                    NetlinkPayload::InnerMessage(inner) => {
                        out.push(inner);
                        Ok(false)
                    }
                    NetlinkPayload::Done(_) => Ok(true),
                    NetlinkPayload::Error(error) if error.code.is_some() => Err(NetError::Kernel {
                        what: what.to_string(),
                        source: error.to_io(),
                    }),
                    _ => Ok(false),
                }
            })?;
            if !interrupted || attempt == DUMP_ATTEMPTS {
                return Ok(out);
            }
            attempt += 1;
        }
    }

    /// Sends a get request for one object and returns the kernel's answer.
    pub(super) fn get(
        &mut self,
        what: &str,
        message: RouteNetlinkMessage,
    ) -> Result<RouteNetlinkMessage, NetError> {
        let sequence = self.send(message, 0)?;
        let mut out = None;
        self.receive(what, sequence, |reply| match reply.payload {
            NetlinkPayload::InnerMessage(inner) => {
                out = Some(inner);
                Ok(true)
            }
            NetlinkPayload::Error(error) if error.code.is_some() => Err(NetError::Kernel {
                what: what.to_string(),
                source: error.to_io(),
            }),
            NetlinkPayload::Error(_) | NetlinkPayload::Done(_) => Ok(true),
            _ => Ok(false),
        })?;
        out.ok_or_else(|| NetError::Decode {
            what: what.to_string(),
            reason: "no answer".into(),
        })
    }
}
