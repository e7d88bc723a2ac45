//! A synchronous rtnetlink socket: one request at a time, answered by an
//! acknowledgement or a dump, read into a bounded buffer and matched by
//! sequence number. Plus [`LinkMonitor`], which wakes when a link appears.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlaBuffer, NlasIterator,
    NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};

use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

use super::message::Message;

/// One datagram from the kernel: a dump fills at most 32 KiB per datagram.
pub const RECV_BUF_BYTES: usize = 64 * 1024;
/// Most messages one dump may return (links, addresses or routes).
pub const MAX_DUMP_MESSAGES: usize = 4096;
/// How long a reply may take before the request fails (the kernel answers at
/// once; this only bounds a kernel that never does).
const RECV_TIMEOUT_MS: i64 = 5_000;
/// Times a dump is repeated when the kernel says it was interrupted by a change.
const DUMP_ATTEMPTS: usize = 3;
/// `NLMSGERR_ATTR_MSG`: the extended acknowledgement's text.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Length of a netlink message header, which a capped ack echoes.
const NLMSG_HEADER_BYTES: usize = 16;
/// `RTMGRP_LINK`: the multicast group of link notifications.
const RTMGRP_LINK: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("netlink send: {0}")]
    Send(#[source] io::Error),
    #[error("netlink receive: {0}")]
    Receive(#[source] io::Error),
    #[error("netlink reply of {len} bytes exceeds the {RECV_BUF_BYTES}-byte buffer")]
    Truncated { len: usize },
    #[error("malformed netlink reply: {0}")]
    Decode(String),
    #[error("netlink dump exceeds {MAX_DUMP_MESSAGES} messages")]
    DumpTooLong,
    #[error("netlink dump kept changing under {DUMP_ATTEMPTS} attempts")]
    DumpInterrupted,
    #[error("{}", kernel_text(*.errno, .message.as_deref()))]
    Kernel {
        errno: Errno,
        /// The extended acknowledgement's text, when the kernel gave one.
        message: Option<String>,
    },
}

fn kernel_text(errno: Errno, message: Option<&str>) -> String {
    match message {
        Some(m) => format!("{} ({m})", errno.desc()),
        None => errno.desc().to_string(),
    }
}

impl NetlinkError {
    /// The errno of a refused request.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            NetlinkError::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// A NETLINK_ROUTE socket connected to the kernel.
pub struct Netlink {
    socket: Socket,
    sequence: u32,
    buf: Vec<u8>,
}

impl Netlink {
    pub fn open() -> Result<Self, NetlinkError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
        socket.bind_auto().map_err(NetlinkError::Socket)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(NetlinkError::Socket)?;
        // Acks echo only the request's header, and carry the kernel's text.
        // Both are optional: without them errors lose only their detail.
        let _ = socket.set_cap_ack(true);
        let _ = socket.set_ext_ack(true);
        let timeout = TimeVal::new(RECV_TIMEOUT_MS / 1000, 0);
        setsockopt(&socket, sockopt::ReceiveTimeout, &timeout)
            .map_err(|e| NetlinkError::Socket(e.into()))?;
        Ok(Netlink {
            socket,
            sequence: 0,
            buf: vec![0; RECV_BUF_BYTES],
        })
    }

    /// Sends `message` and waits for the kernel's acknowledgement.
    pub fn request(&mut self, message: Message, flags: u16) -> Result<(), NetlinkError> {
        let sequence = self.send(message, flags | NLM_F_ACK)?;
        self.receive(sequence, &mut |_, _| Err(unexpected()))
            .map(|_| ())
    }

    /// Sends a dump request and collects the answer's messages.
    pub fn dump(&mut self, message: Message) -> Result<Vec<Message>, NetlinkError> {
        for _ in 0..DUMP_ATTEMPTS {
            let sequence = self.send(message.clone(), NLM_F_DUMP)?;
            let mut out = Vec::new();
            let mut interrupted = false;
            self.receive(sequence, &mut |flags, inner| {
                interrupted |= flags & NLM_F_DUMP_INTR != 0;
                if out.len() == MAX_DUMP_MESSAGES {
                    return Err(NetlinkError::DumpTooLong);
                }
                out.push(inner);
                Ok(())
            })?;
            if !interrupted {
                return Ok(out);
            }
        }
        Err(NetlinkError::DumpInterrupted)
    }

    fn send(&mut self, message: Message, flags: u16) -> Result<u32, NetlinkError> {
        self.sequence = self.sequence.wrapping_add(1).max(1);
        let mut packet = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::InnerMessage(message),
        );
        packet.header.flags = NLM_F_REQUEST | flags;
        packet.header.sequence_number = self.sequence;
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.socket.send(&bytes, 0).map_err(NetlinkError::Send)?;
        Ok(self.sequence)
    }

    /// Reads datagrams until the answer to `sequence` ends (ack, error or
    /// done), handing each inner message and its header flags to `each`.
    fn receive(
        &mut self,
        sequence: u32,
        each: &mut dyn FnMut(u16, Message) -> Result<(), NetlinkError>,
    ) -> Result<(), NetlinkError> {
        loop {
            // MSG_TRUNC: the datagram's real length, so a cut one is noticed.
            let len = self
                .socket
                .recv(&mut &mut self.buf[..], libc::MSG_TRUNC)
                .map_err(NetlinkError::Receive)?;
            if len > self.buf.len() {
                return Err(NetlinkError::Truncated { len });
            }
            let mut offset = 0;
            while offset < len {
                let bytes = &self.buf[offset..len];
                let size = NetlinkBuffer::new_checked(bytes)
                    .map_err(|e| NetlinkError::Decode(e.to_string()))?
                    .length() as usize;
                offset += size.next_multiple_of(4).max(NLMSG_HEADER_BYTES);
                let message = NetlinkMessage::<Message>::deserialize(bytes)
                    .map_err(|e| NetlinkError::Decode(e.to_string()))?;
                if message.header.sequence_number != sequence {
                    continue; // a stale answer to an earlier, failed request
                }
                let flags = message.header.flags;
                match message.payload {
                    NetlinkPayload::InnerMessage(inner) => each(flags, inner)?,
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(()),
                        Some(code) => {
                            return Err(NetlinkError::Kernel {
                                errno: Errno::from_raw(-code.get()),
                                message: ack_text(&e.header),
                            })
                        }
                    },
                    NetlinkPayload::Done(done) if done.code < 0 => {
                        return Err(NetlinkError::Kernel {
                            errno: Errno::from_raw(-done.code),
                            message: None,
                        })
                    }
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::Overrun(_) => {
                        return Err(NetlinkError::Decode("overrun".into()))
                    }
                    _ => {}
                }
            }
        }
    }
}

fn unexpected() -> NetlinkError {
    NetlinkError::Decode("a message where an acknowledgement was due".into())
}

/// The `NLMSGERR_ATTR_MSG` text after the echoed request header of a capped
/// ack, if the kernel put one there.
fn ack_text(echo: &[u8]) -> Option<String> {
    let tlvs = echo.get(NLMSG_HEADER_BYTES..)?;
    NlasIterator::new(tlvs)
        .filter_map(Result::ok)
        .find(|nla: &NlaBuffer<&[u8]>| nla.kind() == NLMSGERR_ATTR_MSG)
        .map(|nla| {
            let value = nla.value();
            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            String::from_utf8_lossy(&value[..end]).into_owned()
        })
}

/// A socket subscribed to link notifications: [`LinkMonitor::wait`] returns
/// when a link appeared or changed, or when the time is up.
pub struct LinkMonitor {
    socket: Socket,
    buf: Vec<u8>,
}

impl LinkMonitor {
    pub fn open() -> Result<Self, NetlinkError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
        socket
            .bind(&SocketAddr::new(0, RTMGRP_LINK))
            .map_err(NetlinkError::Socket)?;
        Ok(LinkMonitor {
            socket,
            buf: vec![0; RECV_BUF_BYTES],
        })
    }

    /// Waits up to `timeout` for a notification, then drains the queue
    /// (their content does not matter: the caller lists the links again).
    pub fn wait(&mut self, timeout: Duration) -> Result<(), NetlinkError> {
        let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(NetlinkError::Receive(e.into())),
        }
        loop {
            match self.socket.recv(&mut &mut self.buf[..], libc::MSG_DONTWAIT) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                // ENOBUFS: notifications were lost; the next list sees all.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                Err(e) => return Err(NetlinkError::Receive(e)),
            }
        }
    }
}
