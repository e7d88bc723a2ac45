//! Signals `hull` receives, handed to a closure on a dedicated thread: the
//! signals are blocked and read from a signalfd, so no async-signal-safety
//! concerns and no signal handler races.

use std::io;
use std::thread::{self, JoinHandle};

use nix::errno::Errno;
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

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

fn sigset(signals: &[i32]) -> io::Result<SigSet> {
    let mut set = SigSet::empty();
    for &s in signals {
        set.add(Signal::try_from(s)?);
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
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
            .map_err(|errno| SignalError::Mask(errno.into()))?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC)
            .map_err(|errno| SignalError::SignalFd(errno.into()))?;
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
fn next_signal(fd: &SignalFd, token: &CancelToken) -> Option<i32> {
    loop {
        if !pump::wait_readable(fd, token).ok()? {
            return None;
        }
        match fd.read_signal() {
            Ok(Some(info)) => return i32::try_from(info.ssi_signo).ok(),
            Err(Errno::EINTR) => {}
            Ok(None) | Err(_) => return None,
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

    use nix::sys::signal::Signal;
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
            // The thread is alive until `fwd` is dropped, and it blocks the
            // signal, so the signal waits in the signalfd.
            let signal = Signal::try_from(s).unwrap();
            nix::sys::pthread::pthread_kill(thread, signal).unwrap();
            assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(s));
        }
        drop(fwd);
    }
}
