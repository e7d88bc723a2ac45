//! The control service: the agent's end of the vsock channel to the host
//! (see `agent_protocol::wire`). For now it answers the version handshake and
//! powers the VM off on request; container requests come next.

use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use agent_protocol::wire::{self, ErrorCode, Request, Response, AGENT_PORT};
use agent_protocol::Ready;

/// A listening vsock socket on [`AGENT_PORT`].
pub struct Listener(OwnedFd);

/// What the host asked for when it ended the session.
pub enum Outcome {
    PowerOff,
}

impl Listener {
    /// Binds and listens, before the agent announces it is ready.
    pub fn bind() -> io::Result<Self> {
        // SAFETY: plain socket creation; the fd is owned right below.
        let fd = unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh socket nobody else owns.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: an all-zero sockaddr_vm is valid; the fields are set below.
        let mut addr: libc::sockaddr_vm = unsafe { std::mem::zeroed() };
        addr.svm_family = libc::AF_VSOCK as libc::sa_family_t;
        addr.svm_port = AGENT_PORT;
        addr.svm_cid = libc::VMADDR_CID_ANY;
        let len = std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t;
        // SAFETY: `addr` is a valid sockaddr_vm of `len` bytes; `fd` is open.
        let rc = unsafe { libc::bind(fd, std::ptr::addr_of!(addr).cast(), len) };
        // SAFETY: `fd` is a bound stream socket.
        if rc != 0 || unsafe { libc::listen(fd, 8) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self(owned))
    }

    /// Serves host connections one at a time until one asks for power-off.
    pub fn serve(&self, ready: &Ready) -> io::Result<Outcome> {
        loop {
            // SAFETY: accept on our listening socket; peer address not wanted.
            let fd = unsafe {
                libc::accept4(
                    std::os::fd::AsRawFd::as_raw_fd(&self.0),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC,
                )
            };
            if fd < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            // SAFETY: `fd` is a fresh connected socket nobody else owns.
            let mut conn = unsafe { File::from_raw_fd(fd) };
            if let Some(outcome) = session(&mut conn, ready) {
                return Ok(outcome);
            }
        }
    }
}

/// One host connection: hello first, then requests. A broken or malformed
/// session just ends; the agent waits for the next one.
fn session(conn: &mut File, ready: &Ready) -> Option<Outcome> {
    let mut greeted = false;
    while let Ok(Some(request)) = wire::recv::<Request>(conn) {
        let (reply, outcome) = match request {
            Request::Hello { version } => {
                let reply = wire::answer_hello(version, ready);
                greeted = matches!(reply, Response::Hello { .. });
                (reply, None)
            }
            _ if !greeted => (
                Response::Error {
                    code: ErrorCode::HelloRequired,
                    message: "the first request must be hello".into(),
                },
                None,
            ),
            Request::PowerOff => (Response::Ok, Some(Outcome::PowerOff)),
        };
        if wire::send(conn, &reply).is_err() {
            return outcome;
        }
        if outcome.is_some() {
            return outcome;
        }
    }
    None
}
