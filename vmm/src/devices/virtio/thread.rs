//! The worker thread of a device that runs its queues off the vCPU threads:
//! woken by a kick eventfd on QueueNotify, ended by a stop eventfd.
//!
//! A thread spawned inside a transport's activation claims the transport's
//! [`NotifyBinding`](super::notify::NotifyBinding) and registers its kick
//! eventfd as a KVM ioeventfd on `QueueNotify`, so guest kicks reach it
//! without a vCPU exit; stopping (or dropping) the thread unregisters it.
//!
//! A worker that returns an error or panics is reported through its
//! [`DeviceFailures`] (to the VM, which then ends with
//! `VmError::DeviceFailed` and a `device_failed` control event) instead of
//! dying silently. In a `panic = "abort"` build a panic cannot be caught;
//! hull-vmm's panic hook reports it under the thread's name, which is the
//! device's name for that reason.

use std::any::Any;
use std::io;
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::notify::{self, Registration};
use super::ActivateError;
use crate::event::DeviceFailures;

/// A running device thread.
pub struct DeviceThread<T> {
    /// Dropped first on stop: the guest's kicks go back to the transport.
    registration: Option<Registration>,
    kick: Arc<EventFd>,
    stop: Arc<EventFd>,
    thread: JoinHandle<Option<T>>,
}

impl<T: Send + 'static> DeviceThread<T> {
    /// Makes the kick and stop events, hands them to `build` (which makes
    /// the worker's body) and starts it on a thread named after the device
    /// (`name` when `failures` names none). If a transport's notify binding
    /// is current (see [`notify::with_binding`]), the kick eventfd is
    /// registered for it; if that fails the transport keeps forwarding.
    pub fn spawn<F, B>(
        name: &str,
        failures: DeviceFailures,
        build: B,
    ) -> Result<Self, ActivateError>
    where
        B: FnOnce(Arc<EventFd>, Arc<EventFd>) -> Result<F, ActivateError>,
        F: FnOnce() -> io::Result<T> + Send + 'static,
    {
        let kick = Arc::new(EventFd::new(EFD_NONBLOCK)?);
        let stop = Arc::new(EventFd::new(EFD_NONBLOCK)?);
        let body = build(Arc::clone(&kick), Arc::clone(&stop))?;
        let thread_name = failures.device().unwrap_or(name).to_string();
        let injected = failures
            .inject_fault()
            .then(|| (Arc::clone(&kick), Arc::clone(&stop)));
        let thread = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                let outcome = match injected {
                    Some((kick, stop)) => injected_fault(&kick, &stop).map(|()| None),
                    None => match catch_unwind(AssertUnwindSafe(body)) {
                        Ok(result) => result.map(Some),
                        Err(payload) => Err(io::Error::other(format!(
                            "panicked: {}",
                            panic_message(&*payload)
                        ))),
                    },
                };
                match outcome {
                    Ok(value) => value,
                    Err(e) => {
                        failures.report(e.to_string());
                        None
                    }
                }
            })?;
        let registration = notify::claim().and_then(|binding| binding.register(&kick).ok());
        Ok(Self {
            registration,
            kick,
            stop,
            thread,
        })
    }

    /// Whether guest kicks reach the worker through a KVM ioeventfd.
    pub fn has_ioeventfd(&self) -> bool {
        self.registration.is_some()
    }

    /// Wakes the worker (a queue was notified).
    pub fn kick(&self) {
        let _ = self.kick.write(1);
    }

    /// Stops the worker and returns what it returned (`None` if it could not
    /// be woken, as joining would then hang, or it failed).
    pub fn stop(mut self) -> Option<T> {
        drop(self.registration.take());
        self.stop.write(1).ok()?;
        self.thread.join().ok().flatten()
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// The test-only fault: waits for the first queue notification and fails
/// then (`Ok` if stopped first).
fn injected_fault(kick: &EventFd, stop: &EventFd) -> io::Result<()> {
    let mut fds = [kick.as_raw_fd(), stop.as_raw_fd()].map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    loop {
        // SAFETY: `fds` is a valid array of two pollfds.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if fds[1].revents != 0 {
            return Ok(());
        }
        if fds[0].revents != 0 {
            return Err(io::Error::other(
                "injected fault (hull-vmm --inject-device-fault)",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{VmEvent, VmEvents};

    fn failed(rx: &std::sync::mpsc::Receiver<VmEvent>) -> (String, String) {
        match rx.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(VmEvent::DeviceFailed { device, error }) => (device, error),
            other => panic!("expected DeviceFailed, got {other:?}"),
        }
    }

    #[test]
    fn a_worker_error_is_reported_as_a_device_failure() {
        let (events, rx) = VmEvents::channel();
        let failures = DeviceFailures::new(events, "virtio-test");
        let t = DeviceThread::<()>::spawn("t", failures, |_, _| {
            Ok(|| Err(io::Error::other("epoll went away")))
        })
        .unwrap();
        assert_eq!(
            failed(&rx),
            ("virtio-test".to_string(), "epoll went away".to_string())
        );
        assert_eq!(t.stop(), None);
    }

    #[test]
    fn a_worker_panic_is_reported_as_a_device_failure() {
        let (events, rx) = VmEvents::channel();
        let failures = DeviceFailures::new(events, "virtio-test");
        let t = DeviceThread::<()>::spawn("t", failures, |_, _| {
            Ok(|| -> io::Result<()> { panic!("queue index out of range") })
        })
        .unwrap();
        let (device, error) = failed(&rx);
        assert_eq!(device, "virtio-test");
        assert_eq!(error, "panicked: queue index out of range");
        assert_eq!(t.stop(), None);
    }

    #[test]
    fn a_clean_worker_reports_nothing_and_returns_its_value() {
        let (events, rx) = VmEvents::channel();
        let failures = DeviceFailures::new(events, "virtio-test");
        let t = DeviceThread::spawn("t", failures, |_, stop| {
            Ok(move || {
                let mut fd = libc::pollfd {
                    fd: stop.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut fd, 1, -1) };
                Ok(7)
            })
        })
        .unwrap();
        assert_eq!(t.stop(), Some(7));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn the_injected_fault_fires_on_the_first_kick() {
        let (events, rx) = VmEvents::channel();
        let failures = DeviceFailures::new(events, "virtio-test").with_injected_fault(true);
        let t = DeviceThread::<()>::spawn("t", failures, |_, _| Ok(|| Ok(()))).unwrap();
        assert!(rx.try_recv().is_err(), "nothing before a kick");
        t.kick();
        let (_, error) = failed(&rx);
        assert!(error.starts_with("injected fault"), "{error}");
        t.stop();
    }

    #[test]
    fn a_thread_spawned_in_an_activation_gets_the_ioeventfd_until_stopped() {
        use crate::devices::virtio::notify::tests::MockRegistry;
        use crate::devices::virtio::notify::{with_binding, NotifyBinding, NotifyRoute};

        let mock = Arc::new(MockRegistry::default());
        let binding = NotifyBinding::new(mock.clone(), 0xd000_0050);
        let t = with_binding(Some(Arc::clone(&binding)), || {
            DeviceThread::spawn("t", DeviceFailures::default(), |kick, _| {
                Ok(move || {
                    let mut fd = libc::pollfd {
                        fd: kick.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut fd, 1, -1) };
                    kick.read()
                })
            })
        })
        .unwrap();
        assert!(t.has_ioeventfd());
        assert_eq!(binding.route(), NotifyRoute::IoEventFd);
        // KVM, not the vCPU thread, wakes the worker.
        assert!(mock.guest_write(0xd000_0050));
        assert_eq!(t.stop(), Some(1));
        assert_eq!(binding.route(), NotifyRoute::Transport);
        assert_eq!(
            mock.log(),
            [("register", 0xd000_0050), ("unregister", 0xd000_0050)]
        );
    }

    #[test]
    fn a_thread_outside_an_activation_or_with_a_failing_registry_has_no_ioeventfd() {
        use crate::devices::virtio::notify::tests::MockRegistry;
        use crate::devices::virtio::notify::{with_binding, NotifyBinding, NotifyRoute};

        let t = DeviceThread::<()>::spawn("t", DeviceFailures::default(), |_, _| Ok(|| Ok(())))
            .unwrap();
        assert!(!t.has_ioeventfd());
        t.stop();

        let mock = Arc::new(MockRegistry {
            fail: true,
            ..Default::default()
        });
        let binding = NotifyBinding::new(mock.clone(), 0x50);
        let t = with_binding(Some(Arc::clone(&binding)), || {
            DeviceThread::<()>::spawn("t", DeviceFailures::default(), |_, _| Ok(|| Ok(())))
        })
        .unwrap();
        assert!(!t.has_ioeventfd());
        assert_eq!(binding.route(), NotifyRoute::Transport);
        t.stop();
        assert_eq!(mock.log(), [("register", 0x50)]);
    }
}
