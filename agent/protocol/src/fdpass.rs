//! Passing one file descriptor over a Unix socket (SCM_RIGHTS), with a small
//! payload: the runtime sends a pty master to an engine's console socket,
//! the agent's container-init helper sends the container's pty master to
//! the agent.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Sends `payload` (at least one byte) with `fd` attached.
pub fn send_fd(socket: &impl AsRawFd, payload: &[u8], fd: &impl AsRawFd) -> io::Result<()> {
    if payload.is_empty() {
        // On a stream socket, ancillary data needs at least one byte.
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty payload"));
    }
    let mut control = vec![0u8; cmsg_space(size_of::<i32>())];
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    let msg = one_fd_msghdr(&mut iov, &mut control);
    // SAFETY: msg_control points at CMSG_SPACE(int) writable bytes, enough
    // for one header carrying one int, so CMSG_FIRSTHDR is non-null and its
    // data area holds the descriptor.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<i32>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>(), fd.as_raw_fd());
    }
    // SAFETY: `msg` and everything it points to live across the call.
    let n = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if (n as usize) < payload.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short send"));
    }
    Ok(())
}

/// Receives up to `max` payload bytes and the descriptor sent with them
/// (close-on-exec). A message without one is an error.
pub fn recv_fd(socket: &impl AsRawFd, max: usize) -> io::Result<(Vec<u8>, OwnedFd)> {
    let mut payload = vec![0u8; max.max(1)];
    let mut control = vec![0u8; cmsg_space(size_of::<i32>())];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    let mut msg = one_fd_msghdr(&mut iov, &mut control);
    // SAFETY: `msg` points at live, writable buffers of the sizes given.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the peer closed",
        ));
    }
    payload.truncate(n as usize);
    // SAFETY: recvmsg filled msg_control/msg_controllen; CMSG_FIRSTHDR
    // returns null or a header inside that buffer.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    // SAFETY: a non-null header lies within `control`.
    let ok = msg.msg_flags & libc::MSG_CTRUNC == 0
        && !cmsg.is_null()
        && unsafe {
            (*cmsg).cmsg_level == libc::SOL_SOCKET
                && (*cmsg).cmsg_type == libc::SCM_RIGHTS
                && (*cmsg).cmsg_len as usize >= libc::CMSG_LEN(size_of::<i32>() as u32) as usize
        };
    if !ok {
        return Err(io::Error::other("no descriptor received"));
    }
    // SAFETY: an SCM_RIGHTS header of that length carries at least one int.
    let fd = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>()) };
    // SAFETY: the kernel installed `fd` for us; nobody else owns it.
    Ok((payload, unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// A msghdr over one buffer and a control area sized for one descriptor.
fn one_fd_msghdr(iov: &mut libc::iovec, control: &mut [u8]) -> libc::msghdr {
    // SAFETY: all-zero is a valid msghdr; the fields that matter are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len() as _;
    msg
}

fn cmsg_space(len: usize) -> usize {
    // SAFETY: CMSG_SPACE is arithmetic only.
    unsafe { libc::CMSG_SPACE(len as u32) as usize }
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
