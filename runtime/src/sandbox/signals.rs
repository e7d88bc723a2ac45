//! Signals `hull` receives, handed to a closure on a dedicated thread: the
//! signals are blocked and read from a signalfd, so no async-signal-safety
//! concerns and no signal handler races.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::thread::{self, JoinHandle};

use super::pump::{self, CancelToken, Canceller};

/// What `hull run` forwards to the container's init.
pub const FORWARDED: [i32; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("cannot block signals: {0}")]
    Mask(io::Error),
    #[error("cannot create a signalfd: {0}")]
    SignalFd(io::Error),
    #[error("cannot start the signal thread: {0}")]
    Thread(io::Error),
}

/// The signal thread. Dropping it stops the thread; the signals stay
/// blocked (a signal arriving after that waits, rather than killing `hull`
/// in the middle of its teardown).
#[derive(Debug)]
pub struct SignalForwarder {
    canceller: Canceller,
    thread: Option<JoinHandle<()>>,
}

fn sigset(signals: &[i32]) -> io::Result<libc::sigset_t> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set it is given.
    if unsafe { libc::sigemptyset(set.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: initialised by sigemptyset just above.
    let mut set = unsafe { set.assume_init() };
    for &s in signals {
        // SAFETY: `set` is an initialised sigset_t.
        if unsafe { libc::sigaddset(&mut set, s) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(set)
}

impl SignalForwarder {
    /// Blocks `signals` in the calling thread (and so in every thread it
    /// starts afterwards: call this before starting any) and hands each one
    /// received to `handler`, in order, on a thread of its own.
    pub fn start(
        signals: &[i32],
        mut handler: impl FnMut(i32) + Send + 'static,
    ) -> Result<Self, SignalError> {
        let set = sigset(signals).map_err(SignalError::Mask)?;
        // SAFETY: `set` is initialised; a null old set is allowed.
        let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if r != 0 {
            return Err(SignalError::Mask(io::Error::from_raw_os_error(r)));
        }
        // SAFETY: `set` is initialised; -1 asks for a new descriptor.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(SignalError::SignalFd(io::Error::last_os_error()));
        }
        // SAFETY: signalfd just returned this descriptor and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let (canceller, token) = pump::cancel_pair().map_err(SignalError::Thread)?;
        let thread = thread::Builder::new()
            .name("hull-signals".into())
            .spawn(move || {
                while let Some(signal) = next_signal(&fd, &token) {
                    handler(signal);
                }
            })
            .map_err(SignalError::Thread)?;
        Ok(Self {
            canceller,
            thread: Some(thread),
        })
    }
}

/// The next signal, or `None` once cancelled (or on an error).
fn next_signal(fd: &OwnedFd, token: &CancelToken) -> Option<i32> {
    loop {
        if !pump::wait_readable(fd, token).ok()? {
            return None;
        }
        let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
        let want = size_of::<libc::signalfd_siginfo>();
        // SAFETY: `info` has room for one signalfd_siginfo, the unit the
        // kernel writes, and `fd` is an open signalfd.
        let n = unsafe { libc::read(fd.as_raw_fd(), info.as_mut_ptr().cast(), want) };
        if n == want as isize {
            // SAFETY: the kernel filled the whole struct.
            let info = unsafe { info.assume_init() };
            return i32::try_from(info.ssi_signo).ok();
        }
        if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return None;
        }
    }
}

impl Drop for SignalForwarder {
    fn drop(&mut self) {
        self.canceller.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::thread::JoinHandleExt;
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn signals_reach_the_handler_in_order() {
        let (tx, rx) = mpsc::channel();
        let fwd = SignalForwarder::start(&[libc::SIGUSR1, libc::SIGUSR2], move |s| {
            let _ = tx.send(s);
        })
        .unwrap();
        // A process-wide signal would also reach other test threads, which
        // do not block it; so direct it at the forwarder's own thread.
        let thread = fwd.thread.as_ref().unwrap().as_pthread_t();
        for s in [libc::SIGUSR2, libc::SIGUSR1] {
            // SAFETY: the thread is alive until `fwd` is dropped, and it
            // blocks the signal, so the signal waits in the signalfd.
            assert_eq!(unsafe { libc::pthread_kill(thread, s) }, 0);
            assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(s));
        }
        drop(fwd);
    }
}
