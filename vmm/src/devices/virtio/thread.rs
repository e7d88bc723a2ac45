//! The worker thread of a device that runs its queues off the vCPU threads:
//! woken by a kick eventfd on QueueNotify, ended by a stop eventfd.

use std::sync::Arc;
use std::thread::JoinHandle;

use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::ActivateError;

/// A running device thread.
pub struct DeviceThread<T> {
    kick: Arc<EventFd>,
    stop: Arc<EventFd>,
    thread: JoinHandle<T>,
}

impl<T: Send + 'static> DeviceThread<T> {
    /// Makes the kick and stop events, hands them to `build` (which makes
    /// the worker's body) and starts it on a thread called `name`.
    pub fn spawn<F, B>(name: &str, build: B) -> Result<Self, ActivateError>
    where
        B: FnOnce(Arc<EventFd>, Arc<EventFd>) -> Result<F, ActivateError>,
        F: FnOnce() -> T + Send + 'static,
    {
        let kick = Arc::new(EventFd::new(EFD_NONBLOCK)?);
        let stop = Arc::new(EventFd::new(EFD_NONBLOCK)?);
        let body = build(Arc::clone(&kick), Arc::clone(&stop))?;
        let thread = std::thread::Builder::new().name(name.into()).spawn(body)?;
        Ok(Self { kick, stop, thread })
    }

    /// Wakes the worker (a queue was notified).
    pub fn kick(&self) {
        let _ = self.kick.write(1);
    }

    /// Stops the worker and returns what it returned (`None` if it could not
    /// be woken, as joining would then hang, or it panicked).
    pub fn stop(self) -> Option<T> {
        self.stop.write(1).ok()?;
        self.thread.join().ok()
    }
}
