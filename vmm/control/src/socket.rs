//! One end of a `SOCK_SEQPACKET` Unix socket pair: message boundaries are
//! kept, so one packet is one message.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use crate::MAX_MESSAGE_BYTES;

#[derive(Debug)]
pub struct SeqPacket(OwnedFd);

impl SeqPacket {
    /// A connected pair, both ends close-on-exec.
    pub fn pair() -> io::Result<(Self, Self)> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: socketpair writes two fds into the array it is given.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both fds were just created and are owned by nobody else.
        Ok(unsafe {
            (
                Self(OwnedFd::from_raw_fd(fds[0])),
                Self(OwnedFd::from_raw_fd(fds[1])),
            )
        })
    }

    /// Takes an inherited fd, which must be a `SOCK_SEQPACKET` socket; it is
    /// made close-on-exec.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        let mut kind: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `kind`.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TYPE,
                std::ptr::addr_of_mut!(kind).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        if kind != libc::SOCK_SEQPACKET {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the control fd is not a SOCK_SEQPACKET socket",
            ));
        }
        // SAFETY: F_SETFD on an fd we own.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self(fd))
    }

    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self(self.0.try_clone()?))
    }

    /// Sends one message (blocking while the peer's buffer is full).
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        loop {
            // SAFETY: the buffer is valid for its length; MSG_NOSIGNAL turns a
            // closed peer into EPIPE instead of SIGPIPE.
            let n = unsafe {
                libc::send(
                    self.0.as_raw_fd(),
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Receives one message, waiting until `deadline` (`None`: forever).
    /// `Ok(None)` when the peer closed; `TimedOut` at the deadline;
    /// `InvalidData` for a packet over [`MAX_MESSAGE_BYTES`] (it is dropped).
    pub fn recv(&self, deadline: Option<Instant>) -> io::Result<Option<Vec<u8>>> {
        self.wait_readable(deadline)?;
        let mut buf = vec![0u8; MAX_MESSAGE_BYTES];
        let n = loop {
            // SAFETY: the buffer is valid for its length. With MSG_TRUNC the
            // return value is the packet's real length, even if larger.
            let n = unsafe {
                libc::recv(
                    self.0.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_TRUNC,
                )
            };
            if n >= 0 {
                break n as usize;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        if n == 0 {
            return Ok(None);
        }
        if n > MAX_MESSAGE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("control packet of {n} bytes is over the limit of {MAX_MESSAGE_BYTES}"),
            ));
        }
        buf.truncate(n);
        Ok(Some(buf))
    }

    fn wait_readable(&self, deadline: Option<Instant>) -> io::Result<()> {
        loop {
            let timeout_ms = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    // Round up so a sub-millisecond wait is not a busy loop.
                    i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
                }
            };
            let mut pfd = libc::pollfd {
                fd: self.0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
            match rc {
                1.. => return Ok(()),
                0 => return Err(io::ErrorKind::TimedOut.into()),
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
    }
}

impl AsFd for SeqPacket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl From<SeqPacket> for OwnedFd {
    fn from(s: SeqPacket) -> Self {
        s.0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn packets_keep_their_boundaries_and_oversized_ones_are_refused() {
        let (a, b) = SeqPacket::pair().unwrap();
        a.send(b"one").unwrap();
        a.send(b"two").unwrap();
        a.send(&vec![b'x'; MAX_MESSAGE_BYTES + 1]).unwrap();
        a.send(b"after").unwrap();
        assert_eq!(b.recv(None).unwrap().unwrap(), b"one");
        assert_eq!(b.recv(None).unwrap().unwrap(), b"two");
        let e = b.recv(None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(b.recv(None).unwrap().unwrap(), b"after");
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            b.recv(Some(soon)).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        drop(a);
        assert_eq!(b.recv(None).unwrap(), None);
    }

    #[test]
    fn only_seqpacket_sockets_are_taken() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let e = SeqPacket::from_fd(OwnedFd::from(a)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let (a, _b) = SeqPacket::pair().unwrap();
        assert!(SeqPacket::from_fd(OwnedFd::from(a)).is_ok());
    }
}
