//! The host terminal in terminal mode: raw mode while the container runs
//! (restored on drop), and its window size for the guest's pty.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use agent_protocol::container::WindowSize;

/// Whether `fd` is a terminal.
pub fn is_tty(fd: &impl AsFd) -> bool {
    // SAFETY: isatty only inspects the descriptor, which is open (borrowed).
    unsafe { libc::isatty(fd.as_fd().as_raw_fd()) == 1 }
}

/// The terminal's size, if `fd` is a terminal with a known size.
pub fn window_size(fd: &impl AsFd) -> Option<WindowSize> {
    let mut ws = MaybeUninit::<libc::winsize>::zeroed();
    // SAFETY: TIOCGWINSZ writes one winsize into the valid buffer given.
    let r = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCGWINSZ, ws.as_mut_ptr()) };
    if r != 0 {
        return None;
    }
    // SAFETY: zero-initialised, and filled by the successful ioctl.
    let ws = unsafe { ws.assume_init() };
    (ws.ws_row > 0 && ws.ws_col > 0).then_some(WindowSize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

/// A terminal in raw mode; its previous settings come back on drop.
#[derive(Debug)]
pub struct RawMode {
    fd: OwnedFd,
    saved: libc::termios,
}

impl RawMode {
    /// Puts the terminal `fd` in raw mode; `Ok(None)` if it is no terminal.
    pub fn enable(fd: &impl AsFd) -> io::Result<Option<Self>> {
        if !is_tty(fd) {
            return Ok(None);
        }
        let fd = fd.as_fd().try_clone_to_owned()?;
        let mut saved = MaybeUninit::<libc::termios>::zeroed();
        // SAFETY: tcgetattr fills the valid termios buffer given.
        if unsafe { libc::tcgetattr(fd.as_raw_fd(), saved.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: filled by the successful tcgetattr.
        let saved = unsafe { saved.assume_init() };
        let mut raw = saved;
        // SAFETY: cfmakeraw only edits the termios it is given.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: `raw` is a valid termios; the descriptor is open.
        if unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &raw) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Some(Self { fd, saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: `saved` is the valid termios read in `enable`; the
        // descriptor is ours and open.
        unsafe { libc::tcsetattr(self.fd.as_raw_fd(), libc::TCSANOW, &self.saved) };
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::FromRawFd;
    use std::os::unix::net::UnixStream;

    use super::*;

    /// A new pty pair (master, slave) of the given size.
    fn pty(rows: u16, cols: u16) -> (OwnedFd, OwnedFd) {
        let (mut master, mut slave) = (-1, -1);
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: valid out-pointers for the two descriptors; null name and
        // termios are allowed; `ws` is a valid winsize.
        let r = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &ws,
            )
        };
        assert_eq!(r, 0, "openpty: {}", io::Error::last_os_error());
        // SAFETY: openpty returned two new descriptors that nothing else owns.
        unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
    }

    fn lflag(fd: &OwnedFd) -> libc::tcflag_t {
        let mut t = MaybeUninit::<libc::termios>::zeroed();
        // SAFETY: tcgetattr fills the valid buffer given.
        let r = unsafe { libc::tcgetattr(fd.as_raw_fd(), t.as_mut_ptr()) };
        assert_eq!(r, 0);
        // SAFETY: filled by the successful tcgetattr.
        unsafe { t.assume_init() }.c_lflag
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
