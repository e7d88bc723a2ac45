//! The host side: Unix sockets, and the muxer that routes packets between
//! them and the guest.

mod muxer;

pub use muxer::{Muxer, Token};

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::MAX_CONNECT_LINE;

/// Parses a `CONNECT <port>\n` line (newline included).
pub fn parse_connect(line: &[u8]) -> Option<u32> {
    if line.len() > MAX_CONNECT_LINE {
        return None;
    }
    let rest = line.strip_prefix(b"CONNECT ")?.strip_suffix(b"\n")?;
    if rest.is_empty() || rest.len() > 10 || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(rest).ok()?.parse().ok()
}

/// Connects a non-blocking Unix stream to `path` without ever blocking: a
/// listener with a full backlog is an error (`EAGAIN`), not a wait.
pub fn connect_nonblocking(path: &Path) -> io::Result<UnixStream> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: all-zero bytes are a valid sockaddr_un.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    // SAFETY: plain socket(2) call; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket we own and nothing else refers to.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: `addr` is an initialised sockaddr_un of `len` bytes that
    // outlives the call; `fd` is a valid socket.
    let ret = unsafe { libc::connect(fd, std::ptr::addr_of!(addr).cast(), len) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(UnixStream::from(owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_lines() {
        assert_eq!(parse_connect(b"CONNECT 1234\n"), Some(1234));
        assert_eq!(parse_connect(b"CONNECT 4294967295\n"), Some(u32::MAX));
        assert_eq!(parse_connect(b"CONNECT 4294967296\n"), None);
        assert_eq!(parse_connect(b"CONNECT 12\r\n"), None);
        assert_eq!(parse_connect(b"CONNECT \n"), None);
        assert_eq!(parse_connect(b"CONNECT -1\n"), None);
        assert_eq!(parse_connect(b"connect 1\n"), None);
        assert_eq!(parse_connect(b"CONNECT 1"), None);
    }

    #[test]
    fn nonblocking_connect_refused_without_listener() {
        let dir = std::env::temp_dir().join(format!("hull-vsock-nc-{}", std::process::id()));
        assert!(connect_nonblocking(&dir).is_err());
        let listener = std::os::unix::net::UnixListener::bind(&dir).unwrap();
        let s = connect_nonblocking(&dir).unwrap();
        assert!(listener.accept().is_ok());
        drop(s);
        let _ = std::fs::remove_file(&dir);
    }
}
