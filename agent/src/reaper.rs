//! Reaping: as PID 1 the agent inherits every orphan in the guest. A thread
//! waits for SIGCHLD (blocked everywhere else) and collects every exited
//! child; the container registry learns its processes' exits from it.

use std::io;

fn sigchld_set() -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is a valid value to initialise with sigemptyset.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
    }
    set
}

/// Blocks SIGCHLD in the calling thread (so in every thread spawned after)
/// and starts the reaping thread, which hands each exit (pid, raw wait
/// status) to `on_exit`.
pub fn start(on_exit: impl Fn(i32, i32) + Send + 'static) -> io::Result<()> {
    let set = sigchld_set();
    // SAFETY: `set` is a valid signal set; the old mask is not wanted.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    std::thread::Builder::new()
        .name("reaper".into())
        .spawn(move || loop {
            let mut sig = 0;
            // SAFETY: `set` and `sig` are valid for the call.
            unsafe { libc::sigwait(&set, &mut sig) };
            loop {
                let mut status = 0;
                // SAFETY: `status` is a valid out-pointer.
                let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
                if pid <= 0 {
                    break;
                }
                on_exit(pid, status);
            }
        })?;
    Ok(())
}
