//! Virtio devices over MMIO.
//!
//! A device model implements [`VirtioDevice`]: it names its device type,
//! offers feature bits, exposes a configuration space and, once the driver
//! has set everything up, takes ownership of its queues in
//! [`VirtioDevice::activate`]. The transport ([`mmio::MmioTransport`]) owns
//! the register file the guest sees (virtio 1.2, section 4.2, version 2
//! layout only), runs the driver status state machine and decides when to
//! activate the device.
//!
//! Devices raise interrupts through a shared [`Interrupt`]: it holds the
//! interrupt status bits the guest reads from `InterruptStatus` and an
//! [`EventFd`] the VMM registers as a KVM irqfd.

pub mod fs;
pub mod mmio;
pub mod net;
pub mod notify;
pub mod rng;
pub mod thread;
pub mod vsock;

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use virtio_bindings::virtio_config;
use virtio_bindings::virtio_ids;
use virtio_bindings::virtio_mmio;
use virtio_bindings::virtio_ring;
use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Device type IDs (virtio 1.2, section 5).
pub const TYPE_NET: u32 = virtio_ids::VIRTIO_ID_NET;
pub const TYPE_BLOCK: u32 = virtio_ids::VIRTIO_ID_BLOCK;
pub const TYPE_CONSOLE: u32 = virtio_ids::VIRTIO_ID_CONSOLE;
pub const TYPE_RNG: u32 = virtio_ids::VIRTIO_ID_RNG;
pub const TYPE_VSOCK: u32 = virtio_ids::VIRTIO_ID_VSOCK;
pub const TYPE_FS: u32 = virtio_ids::VIRTIO_ID_FS;

/// Device status bits (virtio 1.2, section 2.1).
pub const STATUS_ACKNOWLEDGE: u32 = virtio_config::VIRTIO_CONFIG_S_ACKNOWLEDGE;
pub const STATUS_DRIVER: u32 = virtio_config::VIRTIO_CONFIG_S_DRIVER;
pub const STATUS_DRIVER_OK: u32 = virtio_config::VIRTIO_CONFIG_S_DRIVER_OK;
pub const STATUS_FEATURES_OK: u32 = virtio_config::VIRTIO_CONFIG_S_FEATURES_OK;
pub const STATUS_DEVICE_NEEDS_RESET: u32 = virtio_config::VIRTIO_CONFIG_S_NEEDS_RESET;
pub const STATUS_FAILED: u32 = virtio_config::VIRTIO_CONFIG_S_FAILED;

/// Feature bits, as masks over the 64-bit feature word.
pub const FEATURE_VERSION_1: u64 = 1 << virtio_config::VIRTIO_F_VERSION_1;
pub const FEATURE_RING_EVENT_IDX: u64 = 1 << virtio_ring::VIRTIO_RING_F_EVENT_IDX;

/// `InterruptStatus` bits.
pub const INTERRUPT_VRING: u32 = virtio_mmio::VIRTIO_MMIO_INT_VRING;
pub const INTERRUPT_CONFIG: u32 = virtio_mmio::VIRTIO_MMIO_INT_CONFIG;

/// Why a device refused to activate.
#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    #[error("queue {0} is ready but its rings are outside guest memory")]
    InvalidQueue(usize),
    #[error("device expects {expected} queues, got {got}")]
    QueueCount { expected: usize, got: usize },
    #[error("device is already active")]
    AlreadyActive,
    #[error("device i/o setup failed: {0}")]
    Io(#[from] io::Error),
    #[error("device failed to activate: {0}")]
    Device(Box<dyn std::error::Error + Send + Sync>),
}

/// Whether the guest wants an interrupt for queue `idx`, which has new
/// used buffers (event-idx aware; an unreadable ring says yes).
pub fn wants_interrupt(queues: &mut [Queue], idx: usize, mem: &GuestMemoryMmap) -> bool {
    queues
        .get_mut(idx)
        .is_some_and(|q| q.needs_notification(mem).unwrap_or(true))
}

/// Copies `data.len()` bytes of a device's configuration space `config`
/// from `offset`; an access outside it reads nothing (leaves `data`).
pub fn read_config_bytes(config: &[u8], offset: u64, data: &mut [u8]) {
    let Ok(start) = usize::try_from(offset) else {
        return;
    };
    let end = start.checked_add(data.len());
    if let Some(src) = end.and_then(|end| config.get(start..end)) {
        data.copy_from_slice(src);
    }
}

/// The queues `activate` received, as exactly `N` of them.
pub fn expect_queues<const N: usize>(queues: Vec<Queue>) -> Result<[Queue; N], ActivateError> {
    let got = queues.len();
    queues
        .try_into()
        .map_err(|_| ActivateError::QueueCount { expected: N, got })
}

/// A virtio device model, independent of the transport.
pub trait VirtioDevice: Send {
    /// The virtio device type (one of the `TYPE_*` constants).
    fn device_type(&self) -> u32;

    /// The maximum size of each queue, one entry per queue. Each must be a
    /// non-zero power of two no larger than 32768.
    fn queue_max_sizes(&self) -> &[u16];

    /// Feature bits the device offers. The transport adds
    /// [`FEATURE_VERSION_1`] itself.
    fn avail_features(&self) -> u64;

    /// The features the driver accepted, always a subset of
    /// [`avail_features`](Self::avail_features). Called once per successful
    /// negotiation; a later call (after a reset) replaces the earlier set.
    fn ack_features(&mut self, features: u64);

    /// Reads the device configuration space at `offset`. The device must
    /// bounds-check: the guest picks both `offset` and `data.len()`. `data`
    /// arrives zeroed.
    fn read_config(&self, offset: u64, data: &mut [u8]);

    /// Writes the device configuration space at `offset`, bounds-checked as
    /// for [`read_config`](Self::read_config).
    fn write_config(&mut self, offset: u64, data: &[u8]);

    /// Starts the device with the queues the driver configured, one per
    /// entry of [`queue_max_sizes`](Self::queue_max_sizes), in order. Queues
    /// the driver left disabled are passed too, with `ready() == false`.
    fn activate(
        &mut self,
        mem: GuestMemoryMmap,
        interrupt: Arc<Interrupt>,
        queues: Vec<Queue>,
    ) -> Result<(), ActivateError>;

    /// The driver wrote `queue_index` to `QueueNotify`. Only called while
    /// the device is active, and only with a valid queue index.
    fn queue_notify(&mut self, _queue_index: u32) {}

    /// Stops an active device and drops its queues so it can be activated
    /// again. Returns false if the device cannot be reset, in which case the
    /// transport leaves it marked as needing a reset.
    fn reset(&mut self) -> bool {
        false
    }
}

/// The interrupt line of one virtio device: the `InterruptStatus` bits and
/// the eventfd that injects the interrupt (a KVM irqfd, set up by the VMM).
///
/// It also carries the configuration generation counter, so a device that
/// changes its configuration space bumps the generation in the same call that
/// tells the driver about it.
#[derive(Debug)]
pub struct Interrupt {
    irq_evt: EventFd,
    status: AtomicU32,
    config_generation: AtomicU32,
}

impl Interrupt {
    /// Creates an interrupt with a fresh non-blocking eventfd.
    pub fn new() -> io::Result<Self> {
        Ok(Self::with_eventfd(EventFd::new(EFD_NONBLOCK)?))
    }

    /// Creates an interrupt that triggers `irq_evt`.
    pub fn with_eventfd(irq_evt: EventFd) -> Self {
        Self {
            irq_evt,
            status: AtomicU32::new(0),
            config_generation: AtomicU32::new(0),
        }
    }

    /// The eventfd to register as an irqfd.
    pub fn eventfd(&self) -> &EventFd {
        &self.irq_evt
    }

    /// The current `InterruptStatus` bits.
    pub fn status(&self) -> u32 {
        self.status.load(Ordering::SeqCst)
    }

    /// The current configuration generation.
    pub fn config_generation(&self) -> u32 {
        self.config_generation.load(Ordering::SeqCst)
    }

    /// Tells the driver a used ring has new entries.
    pub fn signal_used_queue(&self) -> io::Result<()> {
        self.signal(INTERRUPT_VRING)
    }

    /// Tells the driver the configuration space (or device status) changed.
    /// Call this after the change is visible through `read_config`.
    pub fn signal_config_change(&self) -> io::Result<()> {
        self.config_generation.fetch_add(1, Ordering::SeqCst);
        self.signal(INTERRUPT_CONFIG)
    }

    /// Clears the acknowledged `bits` (a write to `InterruptACK`).
    pub fn ack(&self, bits: u32) {
        self.status.fetch_and(!bits, Ordering::SeqCst);
    }

    /// Clears every status bit (device reset).
    fn clear(&self) {
        self.status.store(0, Ordering::SeqCst);
    }

    fn signal(&self, bit: u32) -> io::Result<()> {
        self.status.fetch_or(bit, Ordering::SeqCst);
        self.irq_evt.write(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_queue_sets_vring_bit_and_kicks_eventfd() {
        let irq = Interrupt::new().unwrap();
        assert_eq!(irq.status(), 0);
        irq.signal_used_queue().unwrap();
        assert_eq!(irq.status(), INTERRUPT_VRING);
        assert_eq!(irq.eventfd().read().unwrap(), 1);
        assert_eq!(irq.config_generation(), 0);
    }

    #[test]
    fn config_change_sets_config_bit_and_bumps_generation() {
        let irq = Interrupt::new().unwrap();
        irq.signal_config_change().unwrap();
        irq.signal_used_queue().unwrap();
        assert_eq!(irq.status(), INTERRUPT_VRING | INTERRUPT_CONFIG);
        assert_eq!(irq.config_generation(), 1);
        assert_eq!(irq.eventfd().read().unwrap(), 2);
        irq.ack(INTERRUPT_VRING);
        assert_eq!(irq.status(), INTERRUPT_CONFIG);
        irq.ack(u32::MAX);
        assert_eq!(irq.status(), 0);
    }

    #[test]
    fn clear_drops_all_bits() {
        let irq = Interrupt::new().unwrap();
        irq.signal_used_queue().unwrap();
        irq.signal_config_change().unwrap();
        irq.clear();
        assert_eq!(irq.status(), 0);
    }

    #[test]
    fn feature_masks_match_the_spec() {
        assert_eq!(FEATURE_VERSION_1, 1 << 32);
        assert_eq!(FEATURE_RING_EVENT_IDX, 1 << 29);
        assert_eq!(TYPE_VSOCK, 19);
        assert_eq!(TYPE_FS, 26);
    }
}
