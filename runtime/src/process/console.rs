//! `--console-socket`: a new host pty; its master goes to the caller over
//! the Unix socket (SCM_RIGHTS, with the slave's path as the payload, as
//! runc sends it), its slave becomes the stdio of the sandbox (or exec)
//! process, which relays it to the guest's pty.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("cannot open a pty: {0}")]
    Open(io::Error),
    #[error("cannot connect to the console socket {path}: {source}")]
    Connect {
        path: std::path::PathBuf,
        source: io::Error,
    },
    #[error("cannot send the pty to the console socket: {0}")]
    Send(io::Error),
}

/// A new pty pair.
#[derive(Debug)]
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    /// The slave's path (`/dev/pts/N`).
    pub name: String,
}

impl Pty {
    pub fn open() -> Result<Self, ConsoleError> {
        // SAFETY: posix_openpt has no memory effects; the result is checked.
        let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
        if m < 0 {
            return Err(ConsoleError::Open(io::Error::last_os_error()));
        }
        // SAFETY: `m` was just opened and is owned by nobody else.
        let master = unsafe { OwnedFd::from_raw_fd(m) };
        // SAFETY: grantpt/unlockpt act on the open master.
        if unsafe { libc::grantpt(m) } != 0 || unsafe { libc::unlockpt(m) } != 0 {
            return Err(ConsoleError::Open(io::Error::last_os_error()));
        }
        let mut buf = [0u8; 64];
        // SAFETY: ptsname_r writes at most buf.len() bytes into buf.
        let r = unsafe { libc::ptsname_r(m, buf.as_mut_ptr().cast(), buf.len()) };
        if r != 0 {
            return Err(ConsoleError::Open(io::Error::from_raw_os_error(r)));
        }
        let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let name = String::from_utf8_lossy(&buf[..len]).into_owned();
        let path = std::ffi::CString::new(name.clone())
            .map_err(|e| ConsoleError::Open(io::Error::other(e)))?;
        // SAFETY: `path` is a valid NUL-terminated string.
        let s = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        };
        if s < 0 {
            return Err(ConsoleError::Open(io::Error::last_os_error()));
        }
        // SAFETY: `s` was just opened and is owned by nobody else.
        let slave = unsafe { OwnedFd::from_raw_fd(s) };
        Ok(Self {
            master,
            slave,
            name,
        })
    }

    /// Sends the master to the caller listening on `socket`.
    pub fn send_master(&self, socket: &Path) -> Result<(), ConsoleError> {
        let stream = UnixStream::connect(socket).map_err(|source| ConsoleError::Connect {
            path: socket.to_path_buf(),
            source,
        })?;
        send_fd(&stream, self.name.as_bytes(), self.master.as_raw_fd()).map_err(ConsoleError::Send)
    }
}

/// Sends `payload` with `fd` attached as SCM_RIGHTS.
pub fn send_fd(stream: &UnixStream, payload: &[u8], fd: i32) -> io::Result<()> {
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
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>(), fd);
    }
    // SAFETY: `msg` and everything it points to live across the call.
    let n = unsafe { libc::sendmsg(stream.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receives one descriptor sent with [`send_fd`] (tests and tools).
pub fn recv_fd(stream: &UnixStream) -> io::Result<(Vec<u8>, OwnedFd)> {
    let mut payload = vec![0u8; 4096];
    let mut control = vec![0u8; cmsg_space(size_of::<i32>())];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    let mut msg = one_fd_msghdr(&mut iov, &mut control);
    // SAFETY: `msg` points at live, writable buffers of the sizes given.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    payload.truncate(n as usize);
    // SAFETY: recvmsg filled msg_control/msg_controllen; CMSG_FIRSTHDR
    // returns null or a header inside that buffer.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    // SAFETY: a non-null header lies within `control`.
    let ok = !cmsg.is_null()
        && unsafe {
            (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS
        };
    if !ok {
        return Err(io::Error::other("no descriptor received"));
    }
    // SAFETY: an SCM_RIGHTS header carries at least one int.
    let fd = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>()) };
    // SAFETY: the kernel installed `fd` for us; nobody else owns it.
    Ok((payload, unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// A msghdr over one buffer and a control area (sized for one descriptor).
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
    use std::io::{Read, Write};

    #[test]
    fn the_master_reaches_the_caller_and_talks_to_the_slave() {
        let dir = std::env::temp_dir().join(format!("hull-console-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let pty = Pty::open().unwrap();
        assert!(pty.name.starts_with("/dev/pts/"), "{}", pty.name);
        pty.send_master(&path).unwrap();
        let (conn, _) = listener.accept().unwrap();
        let (name, master) = recv_fd(&conn).unwrap();
        assert_eq!(String::from_utf8(name).unwrap(), pty.name);
        let mut master = std::fs::File::from(master);
        let mut slave = std::fs::File::from(pty.slave);
        // Raw mode on the slave, so the bytes pass unchanged.
        let _raw = crate::sandbox::tty::RawMode::enable(&slave).unwrap();
        master.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        slave.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        std::fs::remove_dir_all(&dir).unwrap();
        let e = pty.master.as_raw_fd();
        assert!(e >= 0);
        let e = Pty::open()
            .unwrap()
            .send_master(&dir.join("gone"))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot connect to the console socket"),
            "{e}"
        );
    }
}
