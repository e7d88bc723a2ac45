//! `--console-socket`: a new host pty; its master goes to the caller over
//! the Unix socket (SCM_RIGHTS, with the slave's path as the payload, as
//! runc sends it), its slave becomes the stdio of the sandbox (or exec)
//! process, which relays it to the guest's pty.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
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
        send_fd(&stream, self.name.as_bytes(), &self.master).map_err(ConsoleError::Send)
    }
}

pub use agent_protocol::fdpass::{recv_fd, send_fd};

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

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
        let (name, master) = recv_fd(&conn, 4096).unwrap();
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
