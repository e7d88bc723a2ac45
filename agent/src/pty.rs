//! Ptys of a given devpts instance: opened through its `ptmx`, the slave
//! through the master (TIOCGPTPEER), never by a path.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use agent_protocol::container::WindowSize;

/// A new (master, slave) pair from the devpts whose multiplexer is `ptmx`.
pub fn open_at(ptmx: &Path) -> io::Result<(File, File)> {
    let master = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(ptmx)?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK with a valid int on a pty master.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd.
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd owned here.
    Ok((master, unsafe { File::from_raw_fd(slave) }))
}

/// Sets the window size on a pty master (nothing without a size).
pub fn set_size(master: &File, size: Option<WindowSize>) {
    if let Some(size) = size {
        let ws = libc::winsize {
            ws_row: size.rows,
            ws_col: size.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ with a valid winsize on the master.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
}
