//! Queue notifications delivered by KVM (an ioeventfd) instead of the vCPU
//! thread.
//!
//! Without this, a guest write to `QueueNotify` exits to the vCPU thread,
//! which calls the device's [`queue_notify`](super::VirtioDevice::queue_notify),
//! which writes the device thread's kick eventfd. With it, the transport's
//! `QueueNotify` address is bound to the kick eventfd with `KVM_IOEVENTFD`,
//! so KVM signals the device thread itself and the vCPU goes straight back
//! into the guest.
//!
//! The wiring needs no code in the devices: the VM gives each transport a
//! [`NotifyBinding`] (its `QueueNotify` address and the VM fd, behind
//! [`IoEventRegistry`]); the transport makes the binding current on its
//! thread for the length of the device's `activate` ([`with_binding`]); a
//! [`DeviceThread`](super::thread::DeviceThread) spawned in there claims it
//! ([`claim`]) and registers its kick eventfd, holding a [`Registration`]
//! that unregisters it when the thread is stopped (device reset or drop).
//! One registration per binding, without a data match: devices re-check
//! every queue on a kick. A device without a thread (virtio-rng) never
//! claims the binding and stays on the synchronous path, as does any device
//! whose registration fails.

use std::cell::RefCell;
use std::io;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use kvm_ioctls::{IoEventAddress, NoDatamatch, VmFd};
use vmm_sys_util::eventfd::EventFd;

/// Binds eventfds to guest MMIO addresses (the VM fd, or a mock in tests).
pub trait IoEventRegistry: Send + Sync {
    /// Makes a guest write of any width to `addr` signal `fd`.
    fn register(&self, fd: &EventFd, addr: u64) -> io::Result<()>;
    /// Undoes [`register`](Self::register).
    fn unregister(&self, fd: &EventFd, addr: u64) -> io::Result<()>;
}

/// The VM fd as an [`IoEventRegistry`]. Holds it weakly: a device thread
/// outliving the VM has nothing to unregister (closing the VM fd drops
/// every ioeventfd).
pub struct KvmIoEvents {
    vm: Weak<VmFd>,
}

impl KvmIoEvents {
    pub fn new(vm: &Arc<VmFd>) -> Self {
        Self {
            vm: Arc::downgrade(vm),
        }
    }
}

impl IoEventRegistry for KvmIoEvents {
    fn register(&self, fd: &EventFd, addr: u64) -> io::Result<()> {
        let vm = self.vm.upgrade().ok_or_else(vm_gone)?;
        vm.register_ioevent(fd, &IoEventAddress::Mmio(addr), NoDatamatch)
            .map_err(|e| io::Error::from_raw_os_error(e.errno()))
    }

    fn unregister(&self, fd: &EventFd, addr: u64) -> io::Result<()> {
        let Some(vm) = self.vm.upgrade() else {
            return Ok(());
        };
        vm.unregister_ioevent(fd, &IoEventAddress::Mmio(addr), NoDatamatch)
            .map_err(|e| io::Error::from_raw_os_error(e.errno()))
    }
}

fn vm_gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the VM fd is closed")
}

/// Where a transport's queue notifications go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyRoute {
    /// The guest's write exits to the vCPU thread; the transport forwards
    /// it to the device.
    Transport,
    /// KVM signals the device thread's kick eventfd; the transport does
    /// nothing with a write that still reaches it.
    IoEventFd,
}

impl NotifyRoute {
    /// Whether the transport must call the device's `queue_notify` itself.
    pub fn transport_forwards(self) -> bool {
        self == Self::Transport
    }
}

/// One transport's `QueueNotify` address and the registry to bind it in.
pub struct NotifyBinding {
    registry: Arc<dyn IoEventRegistry>,
    addr: u64,
    route: Mutex<NotifyRoute>,
}

impl NotifyBinding {
    pub fn new(registry: Arc<dyn IoEventRegistry>, addr: u64) -> Arc<Self> {
        Arc::new(Self {
            registry,
            addr,
            route: Mutex::new(NotifyRoute::Transport),
        })
    }

    /// The guest address the binding covers.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    pub fn route(&self) -> NotifyRoute {
        *self.route.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `kick` for the address. On failure the route stays
    /// [`NotifyRoute::Transport`], so the device still hears every kick.
    pub fn register(self: &Arc<Self>, kick: &Arc<EventFd>) -> io::Result<Registration> {
        let mut route = self.route.lock().unwrap_or_else(PoisonError::into_inner);
        if *route == NotifyRoute::IoEventFd {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("queue notify at {:#x} already has an ioeventfd", self.addr),
            ));
        }
        self.registry.register(kick, self.addr)?;
        *route = NotifyRoute::IoEventFd;
        Ok(Registration {
            binding: Arc::clone(self),
            kick: Arc::clone(kick),
        })
    }
}

/// A registered kick eventfd; dropping it unregisters it and puts the
/// transport back on the synchronous path.
pub struct Registration {
    binding: Arc<NotifyBinding>,
    kick: Arc<EventFd>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut route = self
            .binding
            .route
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Back to the transport first: if unregistering fails, KVM still
        // signals the (then unread) eventfd and the transport forwards too,
        // which a stopped device ignores.
        *route = NotifyRoute::Transport;
        let _ = self
            .binding
            .registry
            .unregister(&self.kick, self.binding.addr);
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<NotifyBinding>>> = const { RefCell::new(None) };
}

/// Runs `f` (a device's `activate`) with `binding` current on this thread,
/// for a device thread spawned in `f` to [`claim`].
pub fn with_binding<R>(binding: Option<Arc<NotifyBinding>>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<NotifyBinding>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = CURRENT.with(|c| c.replace(binding));
    let _restore = Restore(previous);
    f()
}

/// Takes the binding made current by [`with_binding`], if any: the first
/// device thread of an activation gets it.
pub fn claim() -> Option<Arc<NotifyBinding>> {
    CURRENT.with(|c| c.borrow_mut().take())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Records (un)registrations; keeps a clone of each registered eventfd
    /// so a test can play KVM and signal it.
    #[derive(Default)]
    pub struct MockRegistry {
        pub log: Mutex<Vec<(&'static str, u64)>>,
        pub registered: Mutex<Vec<(u64, EventFd)>>,
        pub fail: bool,
    }

    impl MockRegistry {
        pub fn log(&self) -> Vec<(&'static str, u64)> {
            self.log.lock().unwrap().clone()
        }

        /// What KVM does on a guest write to `addr`.
        pub fn guest_write(&self, addr: u64) -> bool {
            let registered = self.registered.lock().unwrap();
            let hit = registered.iter().find(|(a, _)| *a == addr);
            hit.is_some_and(|(_, fd)| fd.write(1).is_ok())
        }
    }

    impl IoEventRegistry for MockRegistry {
        fn register(&self, fd: &EventFd, addr: u64) -> io::Result<()> {
            self.log.lock().unwrap().push(("register", addr));
            if self.fail {
                return Err(io::Error::from_raw_os_error(libc::ENOSYS));
            }
            self.registered
                .lock()
                .unwrap()
                .push((addr, fd.try_clone()?));
            Ok(())
        }

        fn unregister(&self, _fd: &EventFd, addr: u64) -> io::Result<()> {
            self.log.lock().unwrap().push(("unregister", addr));
            self.registered.lock().unwrap().retain(|(a, _)| *a != addr);
            Ok(())
        }
    }

    fn kick() -> Arc<EventFd> {
        Arc::new(EventFd::new(libc::EFD_NONBLOCK).unwrap())
    }

    #[test]
    fn registration_routes_to_the_eventfd_until_dropped() {
        let mock = Arc::new(MockRegistry::default());
        let binding = NotifyBinding::new(mock.clone(), 0xd000_0050);
        assert_eq!(binding.route(), NotifyRoute::Transport);
        let kick = kick();
        let registration = binding.register(&kick).unwrap();
        assert_eq!(binding.route(), NotifyRoute::IoEventFd);
        assert!(!binding.route().transport_forwards());
        assert!(mock.guest_write(0xd000_0050));
        assert_eq!(kick.read().unwrap(), 1);
        drop(registration);
        assert_eq!(binding.route(), NotifyRoute::Transport);
        assert!(!mock.guest_write(0xd000_0050));
        assert_eq!(
            mock.log(),
            [("register", 0xd000_0050), ("unregister", 0xd000_0050)]
        );
    }

    #[test]
    fn a_second_registration_is_refused() {
        let mock = Arc::new(MockRegistry::default());
        let binding = NotifyBinding::new(mock.clone(), 0x50);
        let _first = binding.register(&kick()).unwrap();
        let err = binding.register(&kick()).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(mock.log(), [("register", 0x50)]);
    }

    #[test]
    fn a_failed_registration_keeps_the_transport_route() {
        let mock = Arc::new(MockRegistry {
            fail: true,
            ..Default::default()
        });
        let binding = NotifyBinding::new(mock.clone(), 0x50);
        assert!(binding.register(&kick()).is_err());
        assert_eq!(binding.route(), NotifyRoute::Transport);
    }

    #[test]
    fn the_binding_is_current_only_inside_with_binding_and_claimed_once() {
        let mock = Arc::new(MockRegistry::default());
        let binding = NotifyBinding::new(mock, 0x50);
        assert!(claim().is_none());
        let (first, second) = with_binding(Some(binding), || (claim(), claim()));
        assert_eq!(first.map(|b| b.addr()), Some(0x50));
        assert!(second.is_none());
        let unclaimed = NotifyBinding::new(Arc::new(MockRegistry::default()), 0x60);
        with_binding(Some(unclaimed), || ());
        assert!(claim().is_none(), "an unclaimed binding does not leak out");
    }

    #[test]
    fn the_kvm_registry_of_a_closed_vm_refuses_and_has_nothing_to_undo() {
        let registry = KvmIoEvents { vm: Weak::new() };
        let fd = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        assert_eq!(
            registry.register(&fd, 0x50).unwrap_err().kind(),
            io::ErrorKind::NotConnected
        );
        assert!(registry.unregister(&fd, 0x50).is_ok());
    }
}
