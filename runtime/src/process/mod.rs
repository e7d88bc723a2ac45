//! The processes `hull` leaves behind for its caller, as runc does.
//!
//! `create` (and `exec --detach`) re-executes `hull` as a *child* that
//! outlives the command: the sandbox process (or the exec process). The
//! child inherits the caller's stdio and relays it for the workload; the
//! parent waits until the child reports on a sync pipe that the container
//! (or the extra process) is ready, writes the `--pid-file`, and returns.
//! The container's pid is the sandbox's stand-in ([`standin`]), which ends
//! with the workload's status, re-raising a fatal signal ([`exit`]), so a
//! caller's `waitpid` sees what it would see with runc; an exec process
//! ends like its process itself.
//!
//! - [`sync`]: the child side and the parent side of the sync pipe;
//! - [`console`]: `--console-socket`: a host pty whose master goes to the
//!   caller over SCM_RIGHTS, its slave becoming the child's terminal;
//! - [`pidfile`]: `--pid-file`, written atomically;
//! - [`exit`]: exit like the workload did;
//! - [`pidfd`]: waiting for and signalling processes that are not our
//!   children, safe against pid reuse;
//! - [`standin`]: the container's host process (its pid), in the spec's
//!   namespaces, when the sandbox process owns the VM.

pub mod console;
pub mod exit;
pub mod pidfd;
pub mod pidfile;
pub mod standin;
pub mod sync;

use nix::errno::Errno;
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;

/// Blocks until our child `pid` has exited, without reaping it (so its pid
/// cannot be reused while others may still signal it).
pub fn wait_exited_no_reap(pid: libc::pid_t) -> std::io::Result<()> {
    loop {
        match waitid(
            Id::Pid(Pid::from_raw(pid)),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
        ) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
}
