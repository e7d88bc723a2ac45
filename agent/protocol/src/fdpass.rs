//! Passing one file descriptor over a Unix socket (SCM_RIGHTS), with a small
//! payload: the runtime sends a pty master to an engine's console socket,
//! the agent's container-init helper sends the container's pty master to
//! the agent.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// Sends `payload` (at least one byte) with `fd` attached.
pub fn send_fd(socket: &impl AsRawFd, payload: &[u8], fd: &impl AsRawFd) -> io::Result<()> {
    if payload.is_empty() {
        // On a stream socket, ancillary data needs at least one byte.
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty payload"));
    }
    let fds = [fd.as_raw_fd()];
    let n = sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(payload)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    if n < payload.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short send"));
    }
    Ok(())
}

/// Receives up to `max` payload bytes and the descriptor sent with them
/// (close-on-exec). A message without one is an error.
pub fn recv_fd(socket: &impl AsRawFd, max: usize) -> io::Result<(Vec<u8>, OwnedFd)> {
    let mut payload = vec![0u8; max.max(1)];
    let mut control = nix::cmsg_space!(RawFd);
    let (n, received) = {
        let mut iov = [IoSliceMut::new(&mut payload)];
        let msg = recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut control),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        let mut received: Vec<RawFd> = Vec::new();
        // A truncated control area (MSG_CTRUNC) is an error of cmsgs().
        if let Ok(cmsgs) = msg.cmsgs() {
            for cmsg in cmsgs {
                if let ControlMessageOwned::ScmRights(fds) = cmsg {
                    received.extend(fds);
                }
            }
        }
        (msg.bytes, received)
    };
    let owned: Vec<OwnedFd> = received
        .into_iter()
        .map(|fd| {
            // SAFETY: the kernel installed these descriptors for us; nobody
            // else owns them (owning them all closes any beyond the first).
            unsafe { OwnedFd::from_raw_fd(fd) }
        })
        .collect();
    let fd = owned.into_iter().next();
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the peer closed",
        ));
    }
    let fd = fd.ok_or_else(|| io::Error::other("no descriptor received"))?;
    payload.truncate(n);
    Ok((payload, fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_descriptor_crosses_with_its_payload() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut r, w) = UnixStream::pair().unwrap();
        send_fd(&a, b"hi", &w).unwrap();
        drop(w);
        let (payload, fd) = recv_fd(&b, 16).unwrap();
        assert_eq!(payload, b"hi");
        let mut w = std::fs::File::from(fd);
        std::io::Write::write_all(&mut w, b"through").unwrap();
        drop(w);
        let mut got = String::new();
        r.read_to_string(&mut got).unwrap();
        assert_eq!(got, "through");
    }

    #[test]
    fn a_message_without_a_descriptor_is_an_error() {
        let (mut a, b) = UnixStream::pair().unwrap();
        std::io::Write::write_all(&mut a, b"x").unwrap();
        assert!(recv_fd(&b, 16).is_err());
    }
}
