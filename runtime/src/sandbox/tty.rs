//! The host terminal in terminal mode: raw mode while the container runs
//! (restored on drop), and its window size for the guest's pty.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use agent_protocol::container::WindowSize;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, libc::winsize);

/// Whether `fd` is a terminal.
pub fn is_tty(fd: &impl AsFd) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

/// The terminal's size, if `fd` is a terminal with a known size.
pub fn window_size(fd: &impl AsFd) -> Option<WindowSize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize, and `ws` is one; the descriptor
    // is open (borrowed).
    unsafe { tiocgwinsz(fd.as_fd().as_raw_fd(), &mut ws) }.ok()?;
    (ws.ws_row > 0 && ws.ws_col > 0).then_some(WindowSize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

/// A terminal in raw mode; its previous settings come back on drop.
#[derive(Debug)]
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    /// Puts the terminal `fd` in raw mode; `Ok(None)` if it is no terminal.
    pub fn enable(fd: &impl AsFd) -> io::Result<Option<Self>> {
        if !is_tty(fd) {
            return Ok(None);
        }
        let fd = fd.as_fd().try_clone_to_owned()?;
        let saved = tcgetattr(&fd)?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&fd, SetArg::TCSANOW, &raw)?;
        Ok(Some(Self { fd, saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(&self.fd, SetArg::TCSANOW, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixStream;

    use super::*;

    /// A new pty pair (master, slave) of the given size.
    fn pty(rows: u16, cols: u16) -> (OwnedFd, OwnedFd) {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pair = nix::pty::openpty(Some(&ws), None).unwrap();
        (pair.master, pair.slave)
    }

    fn lflag(fd: &OwnedFd) -> libc::tcflag_t {
        tcgetattr(fd).unwrap().local_flags.bits()
    }

    #[test]
    fn raw_mode_is_set_and_restored_and_the_size_read() {
        let (_master, slave) = pty(24, 80);
        assert!(is_tty(&slave));
        assert_eq!(window_size(&slave), Some(WindowSize { rows: 24, cols: 80 }));
        assert_ne!(lflag(&slave) & libc::ICANON, 0);
        let raw = RawMode::enable(&slave).unwrap().unwrap();
        assert_eq!(lflag(&slave) & (libc::ICANON | libc::ECHO | libc::ISIG), 0);
        drop(raw);
        assert_ne!(lflag(&slave) & libc::ICANON, 0);
        assert_ne!(lflag(&slave) & libc::ECHO, 0);
    }

    #[test]
    fn a_socket_is_no_terminal() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert!(!is_tty(&a));
        assert_eq!(window_size(&a), None);
        assert!(RawMode::enable(&a).unwrap().is_none());
    }
}
