//! Ending the sandbox (or exec) process the way its workload ended.

use agent_protocol::container::ExitStatus;

/// Exits with `status`: code N as exit(N); signal N by dying of signal N
/// (no core dump), so `waitpid` in the caller sees what runc's would.
pub fn exit_like(status: ExitStatus) -> ! {
    match status {
        ExitStatus::Code(code) => std::process::exit(code),
        ExitStatus::Signal(signal) => die_of(signal),
    }
}

/// Dies of `signal` (falls back to exit 128+N if it cannot).
pub fn die_of(signal: i32) -> ! {
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
    // SAFETY: signal, pthread_sigmask and tgkill act on this process only and
    // take valid arguments; SIG_DFL installs no handler. Raw libc: `signal`
    // may be any number (nix's Signal has no real-time signals), and nix
    // has no tgkill.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        // Directed at this thread, which has the signal unblocked: no
        // other thread's signalfd can take it.
        libc::syscall(libc::SYS_tgkill, libc::getpid(), libc::gettid(), signal);
    }
    std::process::exit(128 + signal)
}
