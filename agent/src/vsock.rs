//! Listening vsock sockets in the guest (nix's socket calls: AF_VSOCK is one
//! more address family there, so no crate of its own is needed).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    accept4, bind, listen, socket, AddressFamily, Backlog, Shutdown, SockFlag, SockType, VsockAddr,
};

const LISTEN_BACKLOG: i32 = 64;

/// A listening vsock stream socket.
pub struct Listener(OwnedFd);

impl Listener {
    /// Binds `port` on any CID and listens.
    pub fn bind(port: u32) -> io::Result<Self> {
        let fd = socket(
            AddressFamily::Vsock,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        bind(fd.as_raw_fd(), &VsockAddr::new(libc::VMADDR_CID_ANY, port))?;
        listen(&fd, Backlog::new(LISTEN_BACKLOG)?)?;
        Ok(Self(fd))
    }

    /// Accepts one connection (retrying on EINTR).
    pub fn accept(&self) -> io::Result<File> {
        loop {
            match accept4(&self.0, SockFlag::SOCK_CLOEXEC) {
                Ok(fd) => return Ok(File::from(fd)),
                Err(Errno::EINTR | Errno::ECONNABORTED) => {}
                // Out of descriptors or memory: back off and try again
                // rather than stop serving for good.
                Err(Errno::EMFILE | Errno::ENFILE | Errno::ENOMEM | Errno::ENOBUFS) => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                Err(errno) => return Err(errno.into()),
            }
        }
    }
}

/// Shuts down one direction of a connected socket (errors ignored: the
/// peer may be gone already).
pub fn shutdown(sock: &File, how: Shutdown) {
    let _ = nix::sys::socket::shutdown(sock.as_raw_fd(), how);
}
