//! Processes that are not our children (a container's sandbox process, seen
//! by a later `hull delete`), through pidfds so a reused pid is never hit.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::state::proc;

/// A process, pinned.
#[derive(Debug)]
pub struct PidFd {
    fd: OwnedFd,
    pub pid: i32,
}

impl PidFd {
    /// The live process `pid` if it still is the one that started at
    /// `start_time`; `None` if it is gone (or the pid was reused).
    pub fn open(pid: i32, start_time: u64) -> io::Result<Option<Self>> {
        if pid <= 0 {
            return Ok(None);
        }
        // SAFETY: pidfd_open (not in nix) takes a pid and flags; the result
        // is checked.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ESRCH) => Ok(None),
                _ => Err(e),
            };
        }
        // SAFETY: a new descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        // Checked after opening: from here on the pidfd pins the process.
        if !proc::is_alive(pid, start_time) {
            return Ok(None);
        }
        Ok(Some(Self { fd, pid }))
    }

    /// Sends `signal`; a process that has exited meanwhile is not an error.
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        // SAFETY: pidfd_send_signal (not in nix) on our pidfd with no siginfo.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit; whether it did.
    pub fn wait_exit(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            let ms = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, ms) {
                Ok(n) if n > 0 => return true,
                Err(Errno::EINTR) => {}
                _ => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_and_waits_for_a_process() {
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let start = proc::ProcStat::read(pid).unwrap().unwrap().start_time;
        assert!(
            PidFd::open(pid, start + 1).unwrap().is_none(),
            "a reused pid"
        );
        let p = PidFd::open(pid, start).unwrap().unwrap();
        assert!(!p.wait_exit(Duration::from_millis(10)));
        p.signal(libc::SIGKILL).unwrap();
        assert!(p.wait_exit(Duration::from_secs(10)));
        child.wait().unwrap();
        p.signal(libc::SIGKILL).unwrap();
        assert!(PidFd::open(pid, start).unwrap().is_none());
    }
}
