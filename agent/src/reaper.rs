//! Reaping: as PID 1 the agent inherits every orphan in the guest. A thread
//! waits for SIGCHLD (blocked everywhere else) and collects every exited
//! child; the container registry learns its processes' exits from it.

use std::io;

use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

fn sigchld_set() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    set
}

/// Blocks SIGCHLD in the calling thread (so in every thread spawned after)
/// and starts the reaping thread, which hands each exit (a wait status with
/// the pid) to `on_exit`.
pub fn start(on_exit: impl Fn(WaitStatus) + Send + 'static) -> io::Result<()> {
    let set = sigchld_set();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(io::Error::from)?;
    std::thread::Builder::new()
        .name("reaper".into())
        .spawn(move || loop {
            let _ = set.wait();
            // Until no exited child is left (StillAlive) or no child at all (ECHILD).
            while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                if status == WaitStatus::StillAlive {
                    break;
                }
                on_exit(status);
            }
        })?;
    Ok(())
}
