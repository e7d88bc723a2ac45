//! The virtio-mmio transport (virtio 1.2, section 4.2), version 2 ("modern")
//! register layout only.
//!
//! Every register is 32 bits wide and must be accessed with naturally
//! aligned 4-byte loads and stores; any other register access is ignored
//! (reads return zeros) and counted in [`MmioTransport::bad_accesses`].
//! The device configuration space from offset 0x100 takes any width and is
//! forwarded to the device, which bounds-checks it.
//!
//! The driver brings the device up with the status sequence
//! ACKNOWLEDGE → DRIVER → FEATURES_OK → DRIVER_OK. Status bits are only
//! latched in that order; FEATURES_OK is refused if the driver accepted a
//! feature the device did not offer or did not accept `VIRTIO_F_VERSION_1`.
//! Queues are configured between FEATURES_OK and DRIVER_OK, and DRIVER_OK
//! activates the device (once). Writing 0 to `Status` resets the transport.
//!
//! A transport given a [`NotifyBinding`] (see [`super::notify`]) lets the
//! device thread started by the activation take its `QueueNotify` writes
//! through a KVM ioeventfd; while one is registered the transport forwards
//! nothing itself. Otherwise it calls the device's `queue_notify` on the
//! vCPU thread that wrote the register.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use virtio_bindings::virtio_mmio as bindings;
use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;

use super::notify::{self, NotifyBinding};
use super::{
    ActivateError, Interrupt, VirtioDevice, FEATURE_RING_EVENT_IDX, FEATURE_VERSION_1,
    STATUS_ACKNOWLEDGE, STATUS_DEVICE_NEEDS_RESET, STATUS_DRIVER, STATUS_DRIVER_OK, STATUS_FAILED,
    STATUS_FEATURES_OK,
};
use crate::devices::bus::BusDevice;

/// Size of one virtio-mmio device's register window.
pub const MMIO_REGION_SIZE: u64 = 0x1000;
/// `MagicValue`: "virt" in little endian.
pub const MAGIC_VALUE: u32 = 0x7472_6976;
/// `Version`: the modern (non-legacy) layout.
pub const VERSION: u32 = 2;
/// `VendorID`: "HULL" in little endian.
pub const VENDOR_ID: u32 = 0x4c4c_5548;
/// Offset of `QueueNotify` in the register window (the ioeventfd address
/// is the window's base plus this).
pub const QUEUE_NOTIFY_OFFSET: u64 = reg::QUEUE_NOTIFY;

/// Register offsets.
mod reg {
    use super::bindings as b;

    pub const MAGIC_VALUE: u64 = b::VIRTIO_MMIO_MAGIC_VALUE as u64;
    pub const VERSION: u64 = b::VIRTIO_MMIO_VERSION as u64;
    pub const DEVICE_ID: u64 = b::VIRTIO_MMIO_DEVICE_ID as u64;
    pub const VENDOR_ID: u64 = b::VIRTIO_MMIO_VENDOR_ID as u64;
    pub const DEVICE_FEATURES: u64 = b::VIRTIO_MMIO_DEVICE_FEATURES as u64;
    pub const DEVICE_FEATURES_SEL: u64 = b::VIRTIO_MMIO_DEVICE_FEATURES_SEL as u64;
    pub const DRIVER_FEATURES: u64 = b::VIRTIO_MMIO_DRIVER_FEATURES as u64;
    pub const DRIVER_FEATURES_SEL: u64 = b::VIRTIO_MMIO_DRIVER_FEATURES_SEL as u64;
    pub const QUEUE_SEL: u64 = b::VIRTIO_MMIO_QUEUE_SEL as u64;
    pub const QUEUE_NUM_MAX: u64 = b::VIRTIO_MMIO_QUEUE_NUM_MAX as u64;
    pub const QUEUE_NUM: u64 = b::VIRTIO_MMIO_QUEUE_NUM as u64;
    pub const QUEUE_READY: u64 = b::VIRTIO_MMIO_QUEUE_READY as u64;
    pub const QUEUE_NOTIFY: u64 = b::VIRTIO_MMIO_QUEUE_NOTIFY as u64;
    pub const INTERRUPT_STATUS: u64 = b::VIRTIO_MMIO_INTERRUPT_STATUS as u64;
    pub const INTERRUPT_ACK: u64 = b::VIRTIO_MMIO_INTERRUPT_ACK as u64;
    pub const STATUS: u64 = b::VIRTIO_MMIO_STATUS as u64;
    pub const QUEUE_DESC_LOW: u64 = b::VIRTIO_MMIO_QUEUE_DESC_LOW as u64;
    pub const QUEUE_DESC_HIGH: u64 = b::VIRTIO_MMIO_QUEUE_DESC_HIGH as u64;
    pub const QUEUE_DRIVER_LOW: u64 = b::VIRTIO_MMIO_QUEUE_AVAIL_LOW as u64;
    pub const QUEUE_DRIVER_HIGH: u64 = b::VIRTIO_MMIO_QUEUE_AVAIL_HIGH as u64;
    pub const QUEUE_DEVICE_LOW: u64 = b::VIRTIO_MMIO_QUEUE_USED_LOW as u64;
    pub const QUEUE_DEVICE_HIGH: u64 = b::VIRTIO_MMIO_QUEUE_USED_HIGH as u64;
    pub const SHM_SEL: u64 = b::VIRTIO_MMIO_SHM_SEL as u64;
    pub const SHM_LEN_LOW: u64 = b::VIRTIO_MMIO_SHM_LEN_LOW as u64;
    pub const SHM_LEN_HIGH: u64 = b::VIRTIO_MMIO_SHM_LEN_HIGH as u64;
    pub const SHM_BASE_LOW: u64 = b::VIRTIO_MMIO_SHM_BASE_LOW as u64;
    pub const SHM_BASE_HIGH: u64 = b::VIRTIO_MMIO_SHM_BASE_HIGH as u64;
    pub const CONFIG_GENERATION: u64 = b::VIRTIO_MMIO_CONFIG_GENERATION as u64;
    pub const CONFIG: u64 = b::VIRTIO_MMIO_CONFIG as u64;
}

/// Errors building a transport.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MmioError {
    #[error("queue {index} has invalid maximum size {max}")]
    InvalidQueueMaxSize { index: usize, max: u16 },
}

/// Which half of a 64-bit queue address a register write sets.
#[derive(Clone, Copy)]
enum Half {
    Low,
    High,
}

/// Which queue ring a register write addresses.
#[derive(Clone, Copy)]
enum Ring {
    Desc,
    Driver,
    Device,
}

/// A virtio device behind the virtio-mmio register window.
pub struct MmioTransport {
    mem: GuestMemoryMmap,
    device: Arc<Mutex<dyn VirtioDevice>>,
    interrupt: Arc<Interrupt>,
    device_type: u32,
    /// What the device itself offers, without the transport's bits.
    device_features: u64,
    queues: Vec<Queue>,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    status: u32,
    /// The device holds queues from a successful `activate`.
    activated: bool,
    /// The driver reset the transport but the device could not be reset:
    /// it is still running, so it must not be set up again.
    stuck: bool,
    bad_accesses: u64,
    /// Where the device's thread may take `QueueNotify` from KVM.
    notify: Option<Arc<NotifyBinding>>,
}

impl MmioTransport {
    /// Wraps `device`. Its queue sizes, type and features are read once,
    /// here. Fails if the device reports an invalid maximum queue size.
    pub fn new(
        mem: GuestMemoryMmap,
        device: Arc<Mutex<dyn VirtioDevice>>,
        interrupt: Arc<Interrupt>,
    ) -> Result<Self, MmioError> {
        let (device_type, device_features, queues) = {
            let dev = lock(&device);
            let queues = build_queues(dev.queue_max_sizes())?;
            (dev.device_type(), dev.avail_features(), queues)
        };
        Ok(Self {
            mem,
            device,
            interrupt,
            device_type,
            device_features,
            queues,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            status: 0,
            activated: false,
            stuck: false,
            bad_accesses: 0,
            notify: None,
        })
    }

    /// Offers `binding` (this window's `QueueNotify` address) to the device
    /// thread each activation starts.
    pub fn with_notify_binding(mut self, binding: Arc<NotifyBinding>) -> Self {
        self.notify = Some(binding);
        self
    }

    /// Whether a `QueueNotify` write reaching the transport is forwarded to
    /// the device (false while KVM delivers them to the device thread).
    pub fn forwards_notify(&self) -> bool {
        self.notify
            .as_ref()
            .is_none_or(|b| b.route().transport_forwards())
    }

    /// The device model, for the VMM to drive (e.g. from an event loop).
    pub fn device(&self) -> Arc<Mutex<dyn VirtioDevice>> {
        Arc::clone(&self.device)
    }

    /// The device's interrupt.
    pub fn interrupt(&self) -> Arc<Interrupt> {
        Arc::clone(&self.interrupt)
    }

    /// The device status as the driver sees it.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// Whether the device has been activated (and not reset since).
    pub fn is_activated(&self) -> bool {
        self.activated
    }

    /// Register accesses ignored for their width, alignment or offset.
    pub fn bad_accesses(&self) -> u64 {
        self.bad_accesses
    }

    /// Every feature offered to the driver.
    fn offered_features(&self) -> u64 {
        self.device_features | FEATURE_VERSION_1
    }

    fn selected_queue(&self) -> Option<&Queue> {
        self.queues.get(usize::try_from(self.queue_sel).ok()?)
    }

    fn count_bad_access(&mut self) {
        self.bad_accesses = self.bad_accesses.saturating_add(1);
    }

    fn read_register(&self, offset: u64) -> Option<u32> {
        let value = match offset {
            reg::MAGIC_VALUE => MAGIC_VALUE,
            reg::VERSION => VERSION,
            reg::DEVICE_ID => self.device_type,
            reg::VENDOR_ID => VENDOR_ID,
            reg::DEVICE_FEATURES => feature_page(self.offered_features(), self.device_features_sel),
            reg::QUEUE_NUM_MAX => self.selected_queue().map_or(0, |q| u32::from(q.max_size())),
            reg::QUEUE_READY => self.selected_queue().map_or(0, |q| u32::from(q.ready())),
            reg::INTERRUPT_STATUS => self.interrupt.status(),
            reg::STATUS => self.status,
            // No shared memory regions: a length of all ones says so.
            reg::SHM_LEN_LOW | reg::SHM_LEN_HIGH | reg::SHM_BASE_LOW | reg::SHM_BASE_HIGH => {
                u32::MAX
            }
            reg::CONFIG_GENERATION => self.interrupt.config_generation(),
            _ => return None,
        };
        Some(value)
    }

    /// Returns false if `offset` is not a writable register.
    fn write_register(&mut self, offset: u64, value: u32) -> bool {
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = value,
            reg::DRIVER_FEATURES => self.write_driver_features(value),
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            reg::QUEUE_SEL => self.queue_sel = value,
            reg::QUEUE_NUM => self.write_queue_size(value),
            reg::QUEUE_READY => self.write_queue_ready(value),
            reg::QUEUE_NOTIFY => self.write_queue_notify(value),
            reg::INTERRUPT_ACK => self.interrupt.ack(value),
            reg::STATUS => self.write_status(value),
            reg::QUEUE_DESC_LOW => self.write_queue_address(Ring::Desc, Half::Low, value),
            reg::QUEUE_DESC_HIGH => self.write_queue_address(Ring::Desc, Half::High, value),
            reg::QUEUE_DRIVER_LOW => self.write_queue_address(Ring::Driver, Half::Low, value),
            reg::QUEUE_DRIVER_HIGH => self.write_queue_address(Ring::Driver, Half::High, value),
            reg::QUEUE_DEVICE_LOW => self.write_queue_address(Ring::Device, Half::Low, value),
            reg::QUEUE_DEVICE_HIGH => self.write_queue_address(Ring::Device, Half::High, value),
            reg::SHM_SEL => {}
            _ => return false,
        }
        true
    }

    fn write_driver_features(&mut self, value: u32) {
        let negotiating = STATUS_ACKNOWLEDGE | STATUS_DRIVER;
        if self.status != negotiating {
            return;
        }
        let value = u64::from(value);
        self.driver_features = match self.driver_features_sel {
            0 => (self.driver_features & !0xffff_ffff) | value,
            1 => (self.driver_features & 0xffff_ffff) | (value << 32),
            _ => self.driver_features,
        };
    }

    /// The selected queue, if the driver may configure it now: after
    /// FEATURES_OK, before DRIVER_OK, and while the queue is not ready.
    fn queue_in_setup(&mut self) -> Option<&mut Queue> {
        let setup = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK;
        if self.status != setup {
            return None;
        }
        let index = usize::try_from(self.queue_sel).ok()?;
        self.queues.get_mut(index).filter(|q| !q.ready())
    }

    fn write_queue_size(&mut self, value: u32) {
        let Ok(size) = u16::try_from(value) else {
            return;
        };
        if let Some(queue) = self.queue_in_setup() {
            // An invalid size (zero, above the maximum, not a power of two)
            // is refused and leaves the old size in place.
            let _ = queue.try_set_size(size);
        }
    }

    fn write_queue_address(&mut self, ring: Ring, half: Half, value: u32) {
        let Some(queue) = self.queue_in_setup() else {
            return;
        };
        let (low, high) = match half {
            Half::Low => (Some(value), None),
            Half::High => (None, Some(value)),
        };
        // Misaligned addresses are refused by the queue and leave the old
        // address in place.
        match ring {
            Ring::Desc => queue.set_desc_table_address(low, high),
            Ring::Driver => queue.set_avail_ring_address(low, high),
            Ring::Device => queue.set_used_ring_address(low, high),
        }
    }

    fn write_queue_ready(&mut self, value: u32) {
        let setup = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK;
        if self.status != setup || value > 1 {
            return;
        }
        let Ok(index) = usize::try_from(self.queue_sel) else {
            return;
        };
        if let Some(queue) = self.queues.get_mut(index) {
            queue.set_ready(value == 1);
        }
    }

    fn write_queue_notify(&mut self, value: u32) {
        let valid_queue = usize::try_from(value).is_ok_and(|index| index < self.queues.len());
        let active = self.activated && self.status & STATUS_DRIVER_OK != 0;
        if active && valid_queue && self.forwards_notify() {
            lock(&self.device).queue_notify(value);
        }
    }

    fn write_status(&mut self, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        // NEEDS_RESET belongs to the device: a driver that read it and ORs
        // in a new bit writes it back, so it takes no part in the checks.
        let current = self.status & !STATUS_DEVICE_NEEDS_RESET;
        let requested = value & !STATUS_DEVICE_NEEDS_RESET;
        if requested & current != current {
            // Only a reset may clear status bits.
            return;
        }
        let added = requested & !current;
        if added & STATUS_FAILED != 0 {
            self.status |= STATUS_FAILED;
            return;
        }
        if self.stuck || current & STATUS_FAILED != 0 {
            return;
        }
        self.advance_status(current, added);
    }

    /// Latches `added` if it is the next step of the driver sequence.
    fn advance_status(&mut self, current: u32, added: u32) {
        const ACK: u32 = STATUS_ACKNOWLEDGE;
        const ACK_DRIVER: u32 = STATUS_ACKNOWLEDGE | STATUS_DRIVER;
        const FEATURES_DONE: u32 = ACK_DRIVER | STATUS_FEATURES_OK;
        match (current, added) {
            (0, STATUS_ACKNOWLEDGE) | (ACK, STATUS_DRIVER) => self.status |= added,
            (ACK_DRIVER, STATUS_FEATURES_OK) => self.accept_features(),
            (FEATURES_DONE, STATUS_DRIVER_OK) => {
                self.status |= STATUS_DRIVER_OK;
                self.activate();
            }
            _ => {}
        }
    }

    /// Latches FEATURES_OK if the driver's feature set is acceptable, and
    /// tells the device which of its features were taken.
    fn accept_features(&mut self) {
        let unoffered = self.driver_features & !self.offered_features();
        if unoffered != 0 || self.driver_features & FEATURE_VERSION_1 == 0 {
            return;
        }
        let acked = self.driver_features & self.device_features;
        lock(&self.device).ack_features(acked);
        self.status |= STATUS_FEATURES_OK;
    }

    fn activate(&mut self) {
        if self.activated {
            return;
        }
        match self.try_activate() {
            Ok(()) => self.activated = true,
            Err(_) => self.mark_needs_reset(),
        }
    }

    fn try_activate(&self) -> Result<(), ActivateError> {
        let event_idx = self.driver_features & FEATURE_RING_EVENT_IDX != 0;
        let mut queues = Vec::with_capacity(self.queues.len());
        for (index, queue) in self.queues.iter().enumerate() {
            if queue.ready() && !queue.is_valid(&self.mem) {
                return Err(ActivateError::InvalidQueue(index));
            }
            let mut copy =
                Queue::try_from(queue.state()).map_err(|_| ActivateError::InvalidQueue(index))?;
            copy.set_event_idx(event_idx);
            queues.push(copy);
        }
        let interrupt = Arc::clone(&self.interrupt);
        let mut device = lock(&self.device);
        notify::with_binding(self.notify.clone(), || {
            device.activate(self.mem.clone(), interrupt, queues)
        })
    }

    fn mark_needs_reset(&mut self) {
        self.status |= STATUS_DEVICE_NEEDS_RESET;
        // If the eventfd cannot be written the driver still sees the
        // status on its next read; there is nothing better to do.
        let _ = self.interrupt.signal_config_change();
    }

    /// Returns the transport to its initial state and resets an active
    /// device. A device that cannot be reset stays active and the transport
    /// reports DEVICE_NEEDS_RESET, refusing setup until a reset succeeds.
    fn reset(&mut self) {
        if self.activated {
            self.activated = !lock(&self.device).reset();
        }
        self.stuck = self.activated;
        self.status = if self.stuck {
            STATUS_DEVICE_NEEDS_RESET
        } else {
            0
        };
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        self.queues.iter_mut().for_each(|q| q.reset());
        self.interrupt.clear();
    }
}

impl BusDevice for MmioTransport {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if let Some(config_offset) = offset.checked_sub(reg::CONFIG) {
            lock(&self.device).read_config(config_offset, data);
            return;
        }
        let value = self.read_register(offset);
        match (value, <&mut [u8; 4]>::try_from(data)) {
            (Some(value), Ok(buf)) => *buf = value.to_le_bytes(),
            _ => self.count_bad_access(),
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let Some(config_offset) = offset.checked_sub(reg::CONFIG) {
            lock(&self.device).write_config(config_offset, data);
            return;
        }
        let handled = <[u8; 4]>::try_from(data)
            .is_ok_and(|bytes| self.write_register(offset, u32::from_le_bytes(bytes)));
        if !handled {
            self.count_bad_access();
        }
    }
}

/// One 32-bit page of a 64-bit feature word; pages past the second are 0.
fn feature_page(features: u64, page: u32) -> u32 {
    match page {
        0 => features as u32,
        1 => (features >> 32) as u32,
        _ => 0,
    }
}

fn build_queues(max_sizes: &[u16]) -> Result<Vec<Queue>, MmioError> {
    max_sizes
        .iter()
        .enumerate()
        .map(|(index, &max)| {
            Queue::new(max).map_err(|_| MmioError::InvalidQueueMaxSize { index, max })
        })
        .collect()
}

/// Locks the device, recovering from a poisoned mutex like the bus does.
fn lock(device: &Mutex<dyn VirtioDevice>) -> MutexGuard<'_, dyn VirtioDevice + 'static> {
    device.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::virtio::notify::tests::MockRegistry;
    use crate::devices::virtio::thread::DeviceThread;
    use crate::devices::virtio::{INTERRUPT_CONFIG, INTERRUPT_VRING, TYPE_VSOCK};
    use crate::event::DeviceFailures;
    use std::os::fd::AsRawFd;
    use virtio_queue::mock::MockSplitQueue;
    use vm_memory::GuestAddress;
    use vmm_sys_util::eventfd::EventFd;

    const FEATURE_A: u64 = 1 << 3;
    const FEATURE_B: u64 = 1 << 40;
    const DUMMY_FEATURES: u64 = FEATURE_A | FEATURE_B | FEATURE_RING_EVENT_IDX;
    const MEM_SIZE: usize = 0x10_0000;
    const SETUP: u32 = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK;

    #[derive(Default)]
    struct Dummy {
        max_sizes: Vec<u16>,
        config: [u8; 8],
        acked: Vec<u64>,
        activations: usize,
        queues: Vec<Queue>,
        notified: Vec<u32>,
        resets: usize,
        can_reset: bool,
        fail_activate: bool,
        /// Runs a device thread while active, like vsock and fs.
        threaded: bool,
        thread: Option<DeviceThread<()>>,
    }

    impl VirtioDevice for Dummy {
        fn device_type(&self) -> u32 {
            TYPE_VSOCK
        }
        fn queue_max_sizes(&self) -> &[u16] {
            &self.max_sizes
        }
        fn avail_features(&self) -> u64 {
            DUMMY_FEATURES
        }
        fn ack_features(&mut self, features: u64) {
            self.acked.push(features);
        }
        fn read_config(&self, offset: u64, data: &mut [u8]) {
            if let Some(src) = config_range(offset, data.len()).and_then(|r| self.config.get(r)) {
                data.copy_from_slice(src);
            }
        }
        fn write_config(&mut self, offset: u64, data: &[u8]) {
            if let Some(dst) = config_range(offset, data.len()).and_then(|r| self.config.get_mut(r))
            {
                dst.copy_from_slice(data);
            }
        }
        fn activate(
            &mut self,
            _mem: GuestMemoryMmap,
            _interrupt: Arc<Interrupt>,
            queues: Vec<Queue>,
        ) -> Result<(), ActivateError> {
            if self.fail_activate {
                return Err(ActivateError::Device("dummy refuses".into()));
            }
            self.activations += 1;
            self.queues = queues;
            if self.threaded {
                let thread = DeviceThread::spawn("dummy", DeviceFailures::default(), |_, stop| {
                    Ok(move || wait_readable(&stop))
                })?;
                self.thread = Some(thread);
            }
            Ok(())
        }
        fn queue_notify(&mut self, queue_index: u32) {
            self.notified.push(queue_index);
        }
        fn reset(&mut self) -> bool {
            self.resets += 1;
            if self.can_reset {
                self.queues.clear();
                if let Some(thread) = self.thread.take() {
                    thread.stop();
                }
            }
            self.can_reset
        }
    }

    fn wait_readable(fd: &EventFd) -> std::io::Result<()> {
        let mut pollfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pollfd, 1, -1) };
        Ok(())
    }

    fn config_range(offset: u64, len: usize) -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(offset).ok()?;
        Some(start..start.checked_add(len)?)
    }

    fn guest_memory() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_SIZE)]).unwrap()
    }

    fn dummy(max_sizes: &[u16]) -> Arc<Mutex<Dummy>> {
        let config = [0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17];
        Arc::new(Mutex::new(Dummy {
            max_sizes: max_sizes.to_vec(),
            config,
            can_reset: true,
            ..Dummy::default()
        }))
    }

    fn transport_with(mem: GuestMemoryMmap) -> (MmioTransport, Arc<Mutex<Dummy>>) {
        let dev = dummy(&[16, 8]);
        let irq = Arc::new(Interrupt::new().unwrap());
        (MmioTransport::new(mem, dev.clone(), irq).unwrap(), dev)
    }

    fn transport() -> (MmioTransport, Arc<Mutex<Dummy>>) {
        transport_with(guest_memory())
    }

    fn rd(t: &mut MmioTransport, offset: u64) -> u32 {
        let mut buf = [0xaa; 4];
        t.read(offset, &mut buf);
        u32::from_le_bytes(buf)
    }

    fn wr(t: &mut MmioTransport, offset: u64, value: u32) {
        t.write(offset, &value.to_le_bytes());
    }

    fn write_driver_features(t: &mut MmioTransport, features: u64) {
        wr(t, reg::DRIVER_FEATURES_SEL, 0);
        wr(t, reg::DRIVER_FEATURES, features as u32);
        wr(t, reg::DRIVER_FEATURES_SEL, 1);
        wr(t, reg::DRIVER_FEATURES, (features >> 32) as u32);
    }

    /// Drives the status to FEATURES_OK with `features`; returns the status.
    fn negotiate(t: &mut MmioTransport, features: u64) -> u32 {
        wr(t, reg::STATUS, STATUS_ACKNOWLEDGE);
        wr(t, reg::STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        write_driver_features(t, features);
        wr(t, reg::STATUS, SETUP);
        rd(t, reg::STATUS)
    }

    fn set_queue(t: &mut MmioTransport, index: u32, size: u32, rings: [u64; 3]) {
        wr(t, reg::QUEUE_SEL, index);
        wr(t, reg::QUEUE_NUM, size);
        let regs = [
            (reg::QUEUE_DESC_LOW, reg::QUEUE_DESC_HIGH),
            (reg::QUEUE_DRIVER_LOW, reg::QUEUE_DRIVER_HIGH),
            (reg::QUEUE_DEVICE_LOW, reg::QUEUE_DEVICE_HIGH),
        ];
        for ((low, high), addr) in regs.into_iter().zip(rings) {
            wr(t, low, addr as u32);
            wr(t, high, (addr >> 32) as u32);
        }
        wr(t, reg::QUEUE_READY, 1);
    }

    /// Sets up both queues with valid rings and writes DRIVER_OK.
    fn bring_up(t: &mut MmioTransport) {
        assert_eq!(negotiate(t, FEATURE_VERSION_1 | FEATURE_A), SETUP);
        set_queue(t, 0, 16, [0x1000, 0x2000, 0x3000]);
        set_queue(t, 1, 8, [0x4000, 0x5000, 0x6000]);
        wr(t, reg::STATUS, SETUP | STATUS_DRIVER_OK);
    }

    #[test]
    fn identity_registers() {
        let (mut t, _) = transport();
        assert_eq!(rd(&mut t, reg::MAGIC_VALUE), 0x7472_6976);
        assert_eq!(rd(&mut t, reg::VERSION), 2);
        assert_eq!(rd(&mut t, reg::DEVICE_ID), TYPE_VSOCK);
        assert_eq!(rd(&mut t, reg::VENDOR_ID), u32::from_le_bytes(*b"HULL"));
        assert_eq!(rd(&mut t, reg::STATUS), 0);
        assert_eq!(rd(&mut t, reg::SHM_LEN_LOW), u32::MAX);
        assert_eq!(t.bad_accesses(), 0);
    }

    #[test]
    fn queue_num_max_per_queue() {
        let (mut t, _) = transport();
        let mut maxes = Vec::new();
        for sel in [0, 1, 2, u32::MAX] {
            wr(&mut t, reg::QUEUE_SEL, sel);
            maxes.push(rd(&mut t, reg::QUEUE_NUM_MAX));
        }
        assert_eq!(maxes, [16, 8, 0, 0]);
    }

    #[test]
    fn invalid_queue_max_size_is_refused() {
        let irq = Arc::new(Interrupt::new().unwrap());
        let err = MmioTransport::new(guest_memory(), dummy(&[16, 12]), irq).err();
        assert_eq!(
            err,
            Some(MmioError::InvalidQueueMaxSize { index: 1, max: 12 })
        );
    }

    #[test]
    fn device_features_pages_include_version_1() {
        let (mut t, _) = transport();
        wr(&mut t, reg::DEVICE_FEATURES_SEL, 0);
        assert_eq!(rd(&mut t, reg::DEVICE_FEATURES), DUMMY_FEATURES as u32);
        wr(&mut t, reg::DEVICE_FEATURES_SEL, 1);
        assert_eq!(rd(&mut t, reg::DEVICE_FEATURES), (1 << 8) | 1);
        wr(&mut t, reg::DEVICE_FEATURES_SEL, 2);
        assert_eq!(rd(&mut t, reg::DEVICE_FEATURES), 0);
    }

    #[test]
    fn features_ok_accepts_offered_subset() {
        let (mut t, dev) = transport();
        assert_eq!(negotiate(&mut t, FEATURE_VERSION_1 | FEATURE_B), SETUP);
        // VERSION_1 is the transport's; the device only hears of its own.
        assert_eq!(dev.lock().unwrap().acked, [FEATURE_B]);
    }

    #[test]
    fn features_ok_refused_for_unoffered_feature() {
        let (mut t, dev) = transport();
        let status = negotiate(&mut t, FEATURE_VERSION_1 | FEATURE_A | (1 << 5));
        assert_eq!(status, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        assert!(dev.lock().unwrap().acked.is_empty());
        // Dropping the stray bit lets negotiation succeed.
        write_driver_features(&mut t, FEATURE_VERSION_1 | FEATURE_A);
        wr(&mut t, reg::STATUS, SETUP);
        assert_eq!(rd(&mut t, reg::STATUS), SETUP);
    }

    #[test]
    fn features_ok_refused_without_version_1() {
        let (mut t, dev) = transport();
        assert_eq!(
            negotiate(&mut t, FEATURE_A),
            STATUS_ACKNOWLEDGE | STATUS_DRIVER
        );
        assert!(dev.lock().unwrap().acked.is_empty());
    }

    #[test]
    fn driver_features_only_writable_while_negotiating() {
        let (mut t, _) = transport();
        write_driver_features(&mut t, FEATURE_A);
        assert_eq!(t.driver_features, 0);
        assert_eq!(negotiate(&mut t, FEATURE_VERSION_1), SETUP);
        write_driver_features(&mut t, FEATURE_VERSION_1 | FEATURE_A);
        assert_eq!(t.driver_features, FEATURE_VERSION_1);
    }

    #[test]
    fn status_bits_latch_only_in_order() {
        let (mut t, _) = transport();
        wr(&mut t, reg::STATUS, STATUS_DRIVER);
        assert_eq!(rd(&mut t, reg::STATUS), 0);
        wr(&mut t, reg::STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        assert_eq!(rd(&mut t, reg::STATUS), 0);
        wr(&mut t, reg::STATUS, STATUS_ACKNOWLEDGE);
        wr(
            &mut t,
            reg::STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK,
        );
        assert_eq!(rd(&mut t, reg::STATUS), STATUS_ACKNOWLEDGE);
        // Clearing a bit without a reset is refused.
        wr(&mut t, reg::STATUS, STATUS_DRIVER);
        assert_eq!(rd(&mut t, reg::STATUS), STATUS_ACKNOWLEDGE);
        wr(&mut t, reg::STATUS, STATUS_ACKNOWLEDGE | STATUS_FAILED);
        assert_eq!(rd(&mut t, reg::STATUS), STATUS_ACKNOWLEDGE | STATUS_FAILED);
        // Nothing advances after FAILED.
        wr(
            &mut t,
            reg::STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FAILED,
        );
        assert_eq!(rd(&mut t, reg::STATUS), STATUS_ACKNOWLEDGE | STATUS_FAILED);
    }

    #[test]
    fn queue_setup_lands_in_the_queue() {
        let (mut t, _) = transport();
        negotiate(&mut t, FEATURE_VERSION_1);
        set_queue(&mut t, 1, 4, [0x1_2345_6780, 0x2_0000_0002, 0x3_0000_0004]);
        let q = &t.queues[1];
        assert_eq!(q.size(), 4);
        assert_eq!(q.desc_table(), 0x1_2345_6780);
        assert_eq!(q.avail_ring(), 0x2_0000_0002);
        assert_eq!(q.used_ring(), 0x3_0000_0004);
        assert!(q.ready());
        assert_eq!(rd(&mut t, reg::QUEUE_READY), 1);
        assert!(!t.queues[0].ready());
        wr(&mut t, reg::QUEUE_SEL, 0);
        assert_eq!(rd(&mut t, reg::QUEUE_READY), 0);
    }

    #[test]
    fn queue_setup_ignored_before_features_ok() {
        let (mut t, _) = transport();
        wr(&mut t, reg::STATUS, STATUS_ACKNOWLEDGE);
        wr(&mut t, reg::STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        set_queue(&mut t, 0, 4, [0x1000, 0x2000, 0x3000]);
        let q = &t.queues[0];
        assert_eq!((q.size(), q.desc_table(), q.ready()), (16, 0, false));
    }

    #[test]
    fn queue_setup_ignored_once_ready_or_driver_ok() {
        let (mut t, _) = transport();
        bring_up(&mut t);
        wr(&mut t, reg::QUEUE_SEL, 0);
        wr(&mut t, reg::QUEUE_NUM, 4);
        wr(&mut t, reg::QUEUE_DESC_LOW, 0x8000);
        wr(&mut t, reg::QUEUE_READY, 0);
        let q = &t.queues[0];
        assert_eq!((q.size(), q.desc_table(), q.ready()), (16, 0x1000, true));

        let (mut t, _) = transport();
        negotiate(&mut t, FEATURE_VERSION_1);
        set_queue(&mut t, 0, 8, [0x1000, 0x2000, 0x3000]);
        wr(&mut t, reg::QUEUE_NUM, 4);
        wr(&mut t, reg::QUEUE_DRIVER_LOW, 0x8000);
        assert_eq!((t.queues[0].size(), t.queues[0].avail_ring()), (8, 0x2000));
        // Un-readying the queue reopens it for setup.
        wr(&mut t, reg::QUEUE_READY, 0);
        wr(&mut t, reg::QUEUE_NUM, 4);
        assert_eq!(t.queues[0].size(), 4);
    }

    #[test]
    fn invalid_queue_sizes_and_addresses_are_ignored() {
        let (mut t, _) = transport();
        negotiate(&mut t, FEATURE_VERSION_1);
        wr(&mut t, reg::QUEUE_SEL, 0);
        wr(&mut t, reg::QUEUE_NUM, 4);
        for bad in [0, 3, 12, 32, 0x1_0008, u32::MAX] {
            wr(&mut t, reg::QUEUE_NUM, bad);
        }
        assert_eq!(t.queues[0].size(), 4);
        wr(&mut t, reg::QUEUE_DESC_LOW, 0x1008);
        wr(&mut t, reg::QUEUE_DEVICE_LOW, 0x3002);
        assert_eq!((t.queues[0].desc_table(), t.queues[0].used_ring()), (0, 0));
        wr(&mut t, reg::QUEUE_READY, 2);
        assert!(!t.queues[0].ready());
    }

    #[test]
    fn driver_ok_activates_once_with_the_configured_queues() {
        let mem = guest_memory();
        let (mut t, dev) = transport_with(mem.clone());
        let mut ring0 = MockSplitQueue::create(&mem, GuestAddress(0x1_0000), 16);
        ring0.add_chain(2).unwrap();
        let addrs = [
            ring0.desc_table_addr(),
            ring0.avail_addr(),
            ring0.used_addr(),
        ];

        let features = FEATURE_VERSION_1 | FEATURE_A | FEATURE_RING_EVENT_IDX;
        assert_eq!(negotiate(&mut t, features), SETUP);
        set_queue(&mut t, 0, 16, addrs.map(|a| a.0));
        wr(&mut t, reg::STATUS, SETUP | STATUS_DRIVER_OK);
        assert_eq!(rd(&mut t, reg::STATUS), SETUP | STATUS_DRIVER_OK);
        assert!(t.is_activated());
        wr(&mut t, reg::STATUS, SETUP | STATUS_DRIVER_OK);

        let mut d = dev.lock().unwrap();
        assert_eq!(d.activations, 1);
        assert_eq!(d.queues.len(), 2);
        let q0 = &mut d.queues[0];
        assert!(q0.ready() && q0.event_idx_enabled());
        assert_eq!(q0.avail_ring(), addrs[1].0);
        let chain = q0.pop_descriptor_chain(&mem).expect("the driver's chain");
        assert_eq!(chain.count(), 2);
        assert!(!d.queues[1].ready());
    }

    #[test]
    fn activation_refused_for_rings_outside_memory() {
        let (mut t, dev) = transport();
        negotiate(&mut t, FEATURE_VERSION_1);
        set_queue(&mut t, 1, 8, [0x1000, 0x2000, MEM_SIZE as u64]);
        wr(&mut t, reg::STATUS, SETUP | STATUS_DRIVER_OK);
        assert!(!t.is_activated());
        assert_eq!(dev.lock().unwrap().activations, 0);
        let status = rd(&mut t, reg::STATUS);
        assert_eq!(status, SETUP | STATUS_DRIVER_OK | STATUS_DEVICE_NEEDS_RESET);
        assert_eq!(rd(&mut t, reg::INTERRUPT_STATUS), INTERRUPT_CONFIG);
        assert_eq!(t.interrupt().eventfd().read().unwrap(), 1);
        assert_eq!(rd(&mut t, reg::CONFIG_GENERATION), 1);
    }

    #[test]
    fn device_activation_error_sets_needs_reset() {
        let (mut t, dev) = transport();
        dev.lock().unwrap().fail_activate = true;
        bring_up(&mut t);
        assert!(!t.is_activated());
        assert_ne!(rd(&mut t, reg::STATUS) & STATUS_DEVICE_NEEDS_RESET, 0);
        // A driver ORing FAILED into the status it read keeps NEEDS_RESET.
        let status = rd(&mut t, reg::STATUS);
        wr(&mut t, reg::STATUS, status | STATUS_FAILED);
        assert_eq!(rd(&mut t, reg::STATUS), status | STATUS_FAILED);
    }

    #[test]
    fn reset_returns_to_initial_state() {
        let (mut t, dev) = transport();
        bring_up(&mut t);
        t.interrupt().signal_used_queue().unwrap();
        wr(&mut t, reg::QUEUE_SEL, 1);
        wr(&mut t, reg::DEVICE_FEATURES_SEL, 1);
        wr(&mut t, reg::STATUS, 0);

        assert_eq!(dev.lock().unwrap().resets, 1);
        assert!(!t.is_activated());
        assert_eq!(rd(&mut t, reg::STATUS), 0);
        assert_eq!(rd(&mut t, reg::INTERRUPT_STATUS), 0);
        assert_eq!(rd(&mut t, reg::QUEUE_NUM_MAX), 16, "queue_sel back to 0");
        assert_eq!(rd(&mut t, reg::DEVICE_FEATURES), DUMMY_FEATURES as u32);
        assert_eq!(t.driver_features, 0);
        for q in &t.queues {
            assert_eq!(
                (q.ready(), q.size(), q.desc_table()),
                (false, q.max_size(), 0)
            );
        }
        // The device can be brought up again.
        bring_up(&mut t);
        assert_eq!(dev.lock().unwrap().activations, 2);
    }

    #[test]
    fn reset_before_activation_does_not_touch_the_device() {
        let (mut t, dev) = transport();
        negotiate(&mut t, FEATURE_VERSION_1);
        wr(&mut t, reg::STATUS, 0);
        assert_eq!(dev.lock().unwrap().resets, 0);
        assert_eq!(rd(&mut t, reg::STATUS), 0);
    }

    #[test]
    fn unsupported_reset_leaves_device_needing_reset() {
        let (mut t, dev) = transport();
        dev.lock().unwrap().can_reset = false;
        bring_up(&mut t);
        wr(&mut t, reg::STATUS, 0);
        assert!(t.is_activated());
        assert_eq!(rd(&mut t, reg::STATUS), STATUS_DEVICE_NEEDS_RESET);
        assert_eq!(
            negotiate(&mut t, FEATURE_VERSION_1),
            STATUS_DEVICE_NEEDS_RESET
        );
        wr(&mut t, reg::QUEUE_NOTIFY, 0);
        assert!(dev.lock().unwrap().notified.is_empty());

        dev.lock().unwrap().can_reset = true;
        wr(&mut t, reg::STATUS, 0);
        assert_eq!(rd(&mut t, reg::STATUS), 0);
        bring_up(&mut t);
        assert_eq!(dev.lock().unwrap().activations, 2);
    }

    #[test]
    fn interrupt_status_and_ack() {
        let (mut t, _) = transport();
        let irq = t.interrupt();
        irq.signal_used_queue().unwrap();
        assert_eq!(rd(&mut t, reg::INTERRUPT_STATUS), INTERRUPT_VRING);
        irq.signal_config_change().unwrap();
        assert_eq!(
            rd(&mut t, reg::INTERRUPT_STATUS),
            INTERRUPT_VRING | INTERRUPT_CONFIG
        );
        wr(&mut t, reg::INTERRUPT_ACK, INTERRUPT_VRING);
        assert_eq!(rd(&mut t, reg::INTERRUPT_STATUS), INTERRUPT_CONFIG);
        wr(&mut t, reg::INTERRUPT_ACK, INTERRUPT_CONFIG);
        assert_eq!(rd(&mut t, reg::INTERRUPT_STATUS), 0);
    }

    #[test]
    fn queue_notify_forwards_valid_indices_once_active() {
        let (mut t, dev) = transport();
        negotiate(&mut t, FEATURE_VERSION_1);
        wr(&mut t, reg::QUEUE_NOTIFY, 0);
        assert!(dev.lock().unwrap().notified.is_empty());
        bring_up_from_setup(&mut t);
        for index in [1, 0, 2, u32::MAX] {
            wr(&mut t, reg::QUEUE_NOTIFY, index);
        }
        assert_eq!(dev.lock().unwrap().notified, [1, 0]);
    }

    const NOTIFY_ADDR: u64 = 0xd000_0000 + QUEUE_NOTIFY_OFFSET;

    fn notify_transport(threaded: bool) -> (MmioTransport, Arc<Mutex<Dummy>>, Arc<MockRegistry>) {
        let (t, dev) = transport();
        dev.lock().unwrap().threaded = threaded;
        let mock = Arc::new(MockRegistry::default());
        let t = t.with_notify_binding(NotifyBinding::new(mock.clone(), NOTIFY_ADDR));
        (t, dev, mock)
    }

    #[test]
    fn a_device_thread_takes_queue_notify_through_the_ioeventfd() {
        let (mut t, dev, mock) = notify_transport(true);
        assert!(t.forwards_notify());
        bring_up(&mut t);
        assert_eq!(mock.log(), [("register", NOTIFY_ADDR)]);
        assert!(!t.forwards_notify());
        // A write that still reaches the transport is not forwarded.
        wr(&mut t, reg::QUEUE_NOTIFY, 0);
        assert!(dev.lock().unwrap().notified.is_empty());

        // Reset stops the thread, which unregisters; the next activation
        // registers again.
        wr(&mut t, reg::STATUS, 0);
        assert_eq!(
            mock.log(),
            [("register", NOTIFY_ADDR), ("unregister", NOTIFY_ADDR)]
        );
        assert!(t.forwards_notify());
        bring_up(&mut t);
        assert_eq!(mock.log().len(), 3);
        assert!(!t.forwards_notify());
    }

    #[test]
    fn a_device_without_a_thread_keeps_the_synchronous_path() {
        let (mut t, dev, mock) = notify_transport(false);
        bring_up(&mut t);
        assert!(mock.log().is_empty());
        assert!(t.forwards_notify());
        wr(&mut t, reg::QUEUE_NOTIFY, 1);
        assert_eq!(dev.lock().unwrap().notified, [1]);
    }

    #[test]
    fn a_failed_registration_falls_back_to_forwarding() {
        let (t, dev) = transport();
        dev.lock().unwrap().threaded = true;
        let mock = Arc::new(MockRegistry {
            fail: true,
            ..Default::default()
        });
        let mut t = t.with_notify_binding(NotifyBinding::new(mock.clone(), NOTIFY_ADDR));
        bring_up(&mut t);
        assert!(t.is_activated());
        assert!(t.forwards_notify());
        wr(&mut t, reg::QUEUE_NOTIFY, 0);
        assert_eq!(dev.lock().unwrap().notified, [0]);
        wr(&mut t, reg::STATUS, 0);
    }

    fn bring_up_from_setup(t: &mut MmioTransport) {
        set_queue(t, 0, 16, [0x1000, 0x2000, 0x3000]);
        wr(t, reg::STATUS, SETUP | STATUS_DRIVER_OK);
        assert!(t.is_activated());
    }

    #[test]
    fn config_space_reads_and_writes_at_offsets() {
        let (mut t, dev) = transport();
        assert_eq!(rd(&mut t, reg::CONFIG), 0x1312_1110);
        let mut byte = [0xff];
        t.read(reg::CONFIG + 5, &mut byte);
        assert_eq!(byte, [0x15]);
        let mut wide = [0u8; 8];
        t.read(reg::CONFIG, &mut wide);
        assert_eq!(wide, [0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17]);

        t.write(reg::CONFIG + 2, &[0xaa, 0xbb]);
        assert_eq!(dev.lock().unwrap().config[1..5], [0x11, 0xaa, 0xbb, 0x14]);
        // Out of the device's range: zeros, and nothing written.
        assert_eq!(rd(&mut t, reg::CONFIG + 6), 0);
        t.write(reg::CONFIG + 6, &[1, 2, 3, 4]);
        assert_eq!(dev.lock().unwrap().config[6..], [0x16, 0x17]);
        assert_eq!(t.bad_accesses(), 0);
    }

    #[test]
    fn odd_width_and_misaligned_register_accesses_are_ignored_and_counted() {
        let (mut t, _) = transport();
        let mut two = [0xffu8; 2];
        t.read(reg::MAGIC_VALUE, &mut two);
        assert_eq!(two, [0, 0]);
        let mut eight = [0xffu8; 8];
        t.read(reg::MAGIC_VALUE, &mut eight);
        assert_eq!(eight, [0; 8]);
        assert_eq!(rd(&mut t, reg::MAGIC_VALUE + 2), 0);
        assert_eq!(t.bad_accesses(), 3);

        t.write(reg::STATUS, &[STATUS_ACKNOWLEDGE as u8]);
        t.write(reg::STATUS, &[1, 0, 0, 0, 0, 0, 0, 0]);
        wr(&mut t, reg::STATUS + 1, STATUS_ACKNOWLEDGE);
        t.write(reg::STATUS, &[]);
        assert_eq!(rd(&mut t, reg::STATUS), 0);
        assert_eq!(t.bad_accesses(), 7);

        // Unknown offsets and writes to read-only registers count too.
        assert_eq!(rd(&mut t, 0x18), 0);
        wr(&mut t, reg::MAGIC_VALUE, 0);
        assert_eq!(t.bad_accesses(), 9);
    }

    #[test]
    fn garbage_register_values_do_not_panic() {
        let (mut t, _) = transport();
        for sel in [2, 0x8000, u32::MAX] {
            wr(&mut t, reg::QUEUE_SEL, sel);
            wr(&mut t, reg::DEVICE_FEATURES_SEL, sel);
            wr(&mut t, reg::DRIVER_FEATURES_SEL, sel);
            assert_eq!(rd(&mut t, reg::QUEUE_NUM_MAX), 0);
            assert_eq!(rd(&mut t, reg::DEVICE_FEATURES), 0);
        }
        negotiate(&mut t, FEATURE_VERSION_1);
        wr(&mut t, reg::QUEUE_SEL, u32::MAX);
        set_queue(&mut t, u32::MAX, u32::MAX, [u64::MAX; 3]);
        wr(&mut t, reg::STATUS, u32::MAX);
        t.read(u64::MAX, &mut [0u8; 4]);
        t.write(u64::MAX - 1, &[0xff; 16]);

        // A pseudo-random walk over every offset, width and value.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let offset = seed % 0x110;
            let width = [1, 2, 4, 4, 4, 8][(seed >> 12) as usize % 6];
            let value = (seed >> 20).to_le_bytes();
            if seed & (1 << 40) == 0 {
                t.read(offset, &mut [0u8; 8][..width]);
            } else {
                t.write(offset, &value[..width]);
            }
        }
    }
}
