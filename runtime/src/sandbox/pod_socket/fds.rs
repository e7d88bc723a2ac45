//! One pod-socket packet with file descriptors (`SCM_RIGHTS`): a member's
//! `Join` carries its detached mount trees.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags};
use vmm_control::{SeqPacket, MAX_MESSAGE_BYTES};

/// Descriptors one packet can carry (the kernel's `SCM_MAX_FD`): the
/// receive buffer holds as many, so no descriptor is ever cut off (and
/// lost open) by a short buffer.
pub const MAX_FDS: usize = 253;

/// Sends `bytes` with `fds` as one packet.
pub fn send(conn: &SeqPacket, bytes: &[u8], fds: &[OwnedFd]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} file descriptors, at most {MAX_FDS}", fds.len()),
        ));
    }
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let rights = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &rights };
    let iov = [IoSlice::new(bytes)];
    loop {
        match socket::sendmsg::<()>(
            conn.as_fd().as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives one packet and the descriptors it carries, waiting until
/// `deadline`. `Ok(None)` when the peer closed; `TimedOut` at the
/// deadline; `InvalidData` for a packet over [`MAX_MESSAGE_BYTES`] (its
/// descriptors are closed).
pub fn recv(conn: &SeqPacket, deadline: Instant) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut pfd = [PollFd::new(conn.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut pfd, PollTimeout::from(ms)) {
            Ok(0) if Instant::now() >= deadline => return Err(io::ErrorKind::TimedOut.into()),
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => break,
            Err(e) => return Err(e.into()),
        }
    }
    let mut buf = vec![0u8; MAX_MESSAGE_BYTES];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let (bytes, flags, fds) = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match socket::recvmsg::<()>(
            conn.as_fd().as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                let mut fds = Vec::new();
                for cmsg in msg.cmsgs()? {
                    if let ControlMessageOwned::ScmRights(raw) = cmsg {
                        // SAFETY: the kernel just installed these
                        // descriptors in this process; nothing else owns them.
                        fds.extend(
                            raw.into_iter()
                                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                        );
                    }
                }
                break (msg.bytes, msg.flags, fds);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    if flags.contains(MsgFlags::MSG_TRUNC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("pod socket packet over the limit of {MAX_MESSAGE_BYTES} bytes"),
        ));
    }
    if bytes == 0 && fds.is_empty() {
        return Ok(None);
    }
    buf.truncate(bytes);
    Ok(Some((buf, fds)))
}
