//! `RKT_LOCK_FD`: stage0's open, exclusively locked handle of the pod
//! directory. While it is locked the pod counts as running (`rkt list`,
//! `rkt gc`), so `run` keeps it open to its end. It is marked close-on-exec
//! so that hull's daemonized container processes do not hold it: a `run`
//! killed by SIGKILL then leaves a pod that rkt sees exited and that `gc`
//! cleans up.

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use std::os::fd::BorrowedFd;

use crate::Stage1Error;

pub const ENV: &str = "RKT_LOCK_FD";

pub fn keep_lock_fd() -> Result<(), Stage1Error> {
    let Some(text) = std::env::var_os(ENV) else {
        return Ok(());
    };
    let text = text.to_string_lossy();
    let fd: i32 = text
        .trim()
        .parse()
        .ok()
        .filter(|fd| *fd >= 0)
        .ok_or_else(|| Stage1Error::LockFd(format!("{ENV}={text:?} is not a file descriptor")))?;
    // SAFETY: the fd is only borrowed for the two fcntl calls below; stage0
    // passed it open, and nothing in this process closes it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let flags = fcntl(borrowed, FcntlArg::F_GETFD)
        .map_err(|e| Stage1Error::LockFd(format!("{ENV}={fd}: {e}")))?;
    let flags = FdFlag::from_bits_truncate(flags) | FdFlag::FD_CLOEXEC;
    fcntl(borrowed, FcntlArg::F_SETFD(flags))
        .map_err(|e| Stage1Error::LockFd(format!("{ENV}={fd}: {e}")))?;
    Ok(())
}
