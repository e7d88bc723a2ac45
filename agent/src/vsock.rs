//! Listening vsock sockets in the guest.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A listening vsock stream socket.
pub struct Listener(OwnedFd);

impl Listener {
    /// Binds `port` on any CID and listens.
    pub fn bind(port: u32) -> io::Result<Self> {
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
        addr.svm_port = port;
        addr.svm_cid = libc::VMADDR_CID_ANY;
        let len = std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t;
        // SAFETY: `addr` is a valid sockaddr_vm of `len` bytes; `fd` is open.
        let rc = unsafe { libc::bind(fd, std::ptr::addr_of!(addr).cast(), len) };
        // SAFETY: `fd` is a bound stream socket.
        if rc != 0 || unsafe { libc::listen(fd, 64) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self(owned))
    }

    /// Accepts one connection (retrying on EINTR).
    pub fn accept(&self) -> io::Result<File> {
        loop {
            // SAFETY: accept on our listening socket; peer address not wanted.
            let fd = unsafe {
                libc::accept4(
                    self.0.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC,
                )
            };
            if fd >= 0 {
                // SAFETY: `fd` is a fresh connected socket nobody else owns.
                return Ok(unsafe { File::from_raw_fd(fd) });
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) | Some(libc::ECONNABORTED) => {}
                // Out of descriptors or memory: back off and try again
                // rather than stop serving for good.
                Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOMEM)
                | Some(libc::ENOBUFS) => std::thread::sleep(std::time::Duration::from_millis(50)),
                _ => return Err(e),
            }
        }
    }
}

/// Shuts down one direction of a connected socket (errors ignored: the
/// peer may be gone already).
pub fn shutdown(sock: &File, how: libc::c_int) {
    // SAFETY: shutdown on an fd we hold open.
    unsafe { libc::shutdown(sock.as_raw_fd(), how) };
}
