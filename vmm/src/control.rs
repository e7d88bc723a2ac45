//! hull-vmm's end of the control channel (`--control-fd`): events and
//! replies out, requests in. The protocol is crate `vmm-control`'s.
//!
//! Requests are read by a thread of their own and handed to the VM's run
//! loop as [`VmEvent::Request`]; the run loop sends the replies. Sends are
//! serialized under one lock, so sequence numbers go out in order, and
//! nothing is sent after the end event (a panic hook and the run loop may
//! both try to report the end).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use vmm_control::{decode, encode, Body, Event, Reply, RequestMessage, SeqPacket, VmmMessage};

use crate::clock::monotonic_ns;
use crate::event::{VmEvent, VmEvents};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("--control-fd {fd}: {reason}")]
    BadFd { fd: RawFd, reason: String },
    #[error("--control-fd {fd}: {source}")]
    Socket { fd: RawFd, source: io::Error },
}

#[derive(Debug)]
struct SenderState {
    socket: SeqPacket,
    seq: u64,
    ended: bool,
}

/// Sends events and replies; cloneable, usable from any thread.
#[derive(Debug, Clone)]
pub struct ControlSender(Arc<Mutex<SenderState>>);

impl ControlSender {
    /// Sends `event`, which happened at `ns` (CLOCK_MONOTONIC). Best effort:
    /// a runtime that went away does not stop the VM.
    pub fn event(&self, ns: u64, event: Event) {
        let end = event.is_end();
        self.send(ns, Body::Event(event), end);
    }

    /// Sends the reply to request `id`.
    pub fn reply(&self, ns: u64, id: u64, reply: Reply) {
        self.send(ns, Body::Reply { id, reply }, false);
    }

    fn send(&self, ns: u64, body: Body, end: bool) {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if state.ended {
            return;
        }
        let message = VmmMessage {
            seq: state.seq + 1,
            ns: ns.max(1),
            body,
        };
        // Senders cut text to the limit, so a message always fits.
        let Ok(bytes) = encode(&message) else { return };
        if state.socket.send(&bytes).is_ok() {
            state.seq += 1;
            state.ended = end;
        }
    }
}

/// The channel: the socket (for the request reader) and its sender.
#[derive(Debug)]
pub struct ControlChannel {
    socket: SeqPacket,
    sender: ControlSender,
}

impl ControlChannel {
    /// Starts the channel on `socket` with the [`Event::Hello`].
    pub fn new(socket: SeqPacket) -> io::Result<Self> {
        let sender = ControlSender(Arc::new(Mutex::new(SenderState {
            socket: socket.try_clone()?,
            seq: 0,
            ended: false,
        })));
        sender.event(
            monotonic_ns(),
            Event::Hello {
                version: vmm_control::PROTOCOL_VERSION,
            },
        );
        Ok(Self { socket, sender })
    }

    /// Takes the inherited `fd` (a `SOCK_SEQPACKET` socket, not stdio).
    pub fn from_inherited_fd(fd: RawFd) -> Result<Self, ControlError> {
        let bad = |reason: &str| ControlError::BadFd {
            fd,
            reason: reason.into(),
        };
        if fd <= libc::STDERR_FILENO {
            return Err(bad("must not be stdin, stdout or stderr"));
        }
        // SAFETY: F_GETFD only checks that `fd` is open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(bad("not an open file descriptor"));
        }
        // SAFETY: the fd is open, was inherited for exactly this purpose and
        // nothing else in this process owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let socket =
            SeqPacket::from_fd(owned).map_err(|source| ControlError::Socket { fd, source })?;
        Self::new(socket).map_err(|source| ControlError::Socket { fd, source })
    }

    pub fn sender(&self) -> ControlSender {
        self.sender.clone()
    }

    /// Starts the request reader: each well-formed request goes to `events`;
    /// malformed ones are reported on stderr and skipped. It ends when the
    /// runtime closes its end.
    pub fn spawn_reader(&self, events: VmEvents) -> io::Result<()> {
        let socket = self.socket.try_clone()?;
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || read_requests(&socket, &events))?;
        Ok(())
    }
}

fn read_requests(socket: &SeqPacket, events: &VmEvents) {
    loop {
        match socket.recv(None) {
            Ok(Some(bytes)) => match decode::<RequestMessage>(&bytes) {
                Ok(request) => events.send(VmEvent::Request(request)),
                Err(e) => eprintln!("hull-vmm: ignoring a control request: {e}"),
            },
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                eprintln!("hull-vmm: ignoring a control request: {e}")
            }
            Ok(None) | Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use vmm_control::{Inbound, Request, VmState};

    use super::*;

    fn next(inbound: &mut Inbound, runtime: &SeqPacket) -> VmmMessage {
        let deadline = Instant::now() + Duration::from_secs(30);
        let bytes = runtime.recv(Some(deadline)).unwrap().unwrap();
        inbound.accept(&bytes).unwrap()
    }

    #[test]
    fn hello_events_replies_and_nothing_after_the_end() {
        let (vmm, runtime) = SeqPacket::pair().unwrap();
        let channel = ControlChannel::new(vmm).unwrap();
        let sender = channel.sender();
        let mut inbound = Inbound::new();
        let hello = next(&mut inbound, &runtime);
        assert_eq!(hello.body, Body::Event(Event::Hello { version: 1 }));
        sender.reply(
            5,
            9,
            Reply::Done {
                state: VmState::Paused,
            },
        );
        sender.event(
            6,
            Event::DeviceFailed {
                device: "virtio-vsock".into(),
                error: "injected".into(),
            },
        );
        sender.event(7, Event::PowerOff);
        let reply = next(&mut inbound, &runtime);
        assert_eq!((reply.seq, reply.ns), (2, 5));
        let failed = next(&mut inbound, &runtime);
        assert!(matches!(
            failed.body,
            Body::Event(Event::DeviceFailed { .. })
        ));
        drop((channel, sender));
        assert_eq!(runtime.recv(None).unwrap(), None, "nothing after the end");
    }

    #[test]
    fn requests_reach_the_run_loop_and_junk_is_skipped() {
        let (vmm, runtime) = SeqPacket::pair().unwrap();
        let channel = ControlChannel::new(vmm).unwrap();
        let (events, rx) = VmEvents::channel();
        channel.spawn_reader(events).unwrap();
        runtime.send(b"{\"id\":1,\"request\":\"dance\"}").unwrap();
        let ok = encode(&RequestMessage {
            id: 2,
            request: Request::Pause,
        })
        .unwrap();
        runtime.send(&ok).unwrap();
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(VmEvent::Request(r)) => assert_eq!((r.id, r.request), (2, Request::Pause)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stdio_and_closed_fds_are_refused() {
        assert!(matches!(
            ControlChannel::from_inherited_fd(1),
            Err(ControlError::BadFd { .. })
        ));
        assert!(matches!(
            ControlChannel::from_inherited_fd(100_000),
            Err(ControlError::BadFd { .. })
        ));
    }
}
