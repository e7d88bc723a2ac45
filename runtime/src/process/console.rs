//! `--console-socket`: a new host pty; its master goes to the caller over
//! the Unix socket (SCM_RIGHTS, with the slave's path as the payload, as
//! runc sends it), its slave becomes the stdio of the sandbox (or exec)
//! process, which relays it to the guest's pty.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::stat::Mode;

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
        let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let master = posix_openpt(flags).map_err(|errno| ConsoleError::Open(errno.into()))?;
        grantpt(&master).map_err(|errno| ConsoleError::Open(errno.into()))?;
        unlockpt(&master).map_err(|errno| ConsoleError::Open(errno.into()))?;
        let name = ptsname_r(&master).map_err(|errno| ConsoleError::Open(errno.into()))?;
        let slave = nix::fcntl::open(name.as_str(), flags, Mode::empty())
            .map_err(|errno| ConsoleError::Open(errno.into()))?;
        let master = OwnedFd::from(master);
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
