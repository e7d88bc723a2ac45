//! The virtio-net device model ([`VirtioDevice`] implementation).

use std::sync::Arc;

use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

use super::event_handler::Worker;
use super::tap::{tun_offload_flags, NetBackend, Tap};
use super::{
    NetConfig, NetError, NetStats, TapSource, F_CSUM, F_GUEST_CSUM, F_GUEST_TSO4, F_GUEST_TSO6,
    F_GUEST_UFO, F_HOST_TSO4, F_HOST_TSO6, F_HOST_UFO, F_MAC, F_MRG_RXBUF, F_MTU, F_STATUS,
    MIN_MTU, QUEUE_SIZE, S_LINK_UP,
};
use crate::devices::virtio::thread::DeviceThread;
use crate::devices::virtio::{
    expect_queues, ActivateError, Interrupt, VirtioDevice, FEATURE_RING_EVENT_IDX,
    FEATURE_VERSION_1, TYPE_NET,
};
use crate::event::DeviceFailures;

/// Every feature the device offers.
pub const AVAIL_FEATURES: u64 = FEATURE_VERSION_1
    | FEATURE_RING_EVENT_IDX
    | F_MAC
    | F_MTU
    | F_STATUS
    | F_CSUM
    | F_GUEST_CSUM
    | F_GUEST_TSO4
    | F_GUEST_TSO6
    | F_GUEST_UFO
    | F_HOST_TSO4
    | F_HOST_TSO6
    | F_HOST_UFO
    | F_MRG_RXBUF;

/// Bytes of configuration space: mac, status, max_virtqueue_pairs, mtu.
const CONFIG_LEN_BYTES: usize = 12;

/// A virtio-net device over a tap (see the module docs).
pub struct Net {
    config: NetConfig,
    /// The backend while no thread runs (the thread owns it otherwise).
    backend: Option<Box<dyn NetBackend>>,
    acked_features: u64,
    stats: Arc<NetStats>,
    running: Option<DeviceThread<Box<dyn NetBackend>>>,
    failures: DeviceFailures,
}

impl Net {
    /// Opens the tap `config` names (or adopts its fd).
    pub fn new(config: NetConfig) -> Result<Self, NetError> {
        let tap = match &config.source {
            TapSource::Fd(fd) => Tap::from_fd(*fd)?,
            TapSource::Name(name) => Tap::open(name)?,
        };
        Self::with_backend(config, Box::new(tap))
    }

    /// A device over any backend (tests use a socket pair).
    pub fn with_backend(config: NetConfig, backend: Box<dyn NetBackend>) -> Result<Self, NetError> {
        if config.mtu() < MIN_MTU {
            return Err(NetError::BadMtu(config.mtu()));
        }
        Ok(Self {
            config,
            backend: Some(backend),
            acked_features: 0,
            stats: Arc::new(NetStats::default()),
            running: None,
            failures: DeviceFailures::default(),
        })
    }

    /// Reports a failure of the device's thread through `failures`.
    pub fn with_failures(mut self, failures: DeviceFailures) -> Self {
        self.failures = failures;
        self
    }

    /// The device's counters.
    pub fn stats(&self) -> Arc<NetStats> {
        Arc::clone(&self.stats)
    }

    fn config_bytes(&self) -> [u8; CONFIG_LEN_BYTES] {
        let mut b = [0u8; CONFIG_LEN_BYTES];
        b[0..6].copy_from_slice(&self.config.mac);
        b[6..8].copy_from_slice(&S_LINK_UP.to_le_bytes());
        b[8..10].copy_from_slice(&1u16.to_le_bytes());
        b[10..12].copy_from_slice(&self.config.mtu().to_le_bytes());
        b
    }

    fn stop_thread(&mut self) {
        if let Some(running) = self.running.take() {
            if let Some(backend) = running.stop() {
                self.backend = Some(backend);
            }
        }
    }
}

/// Tells the backend the guest's receive offloads; if the kernel refuses
/// some (an old tap without UFO), fewer are always safe to ask for.
fn apply_offload(backend: &mut dyn NetBackend, features: u64) -> std::io::Result<()> {
    let full = tun_offload_flags(features);
    let no_ufo = full & !libc::TUN_F_UFO;
    let mut last = Ok(());
    for flags in [full, no_ufo, 0] {
        last = backend.set_offload(flags);
        if last.is_ok() {
            break;
        }
    }
    last
}

impl VirtioDevice for Net {
    fn device_type(&self) -> u32 {
        TYPE_NET
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE; 2]
    }

    fn avail_features(&self) -> u64 {
        AVAIL_FEATURES
    }

    fn ack_features(&mut self, features: u64) {
        self.acked_features = features;
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        crate::devices::virtio::read_config_bytes(&self.config_bytes(), offset, data);
    }

    fn write_config(&mut self, _offset: u64, _data: &[u8]) {}

    fn activate(
        &mut self,
        mem: GuestMemoryMmap,
        interrupt: Arc<Interrupt>,
        queues: Vec<Queue>,
    ) -> Result<(), ActivateError> {
        if self.running.is_some() {
            return Err(ActivateError::AlreadyActive);
        }
        let queues = Vec::from(expect_queues::<2>(queues)?);
        let Some(mut backend) = self.backend.take() else {
            return Err(ActivateError::Device(
                "the tap was lost when the device thread failed".into(),
            ));
        };
        if let Err(e) = apply_offload(backend.as_mut(), self.acked_features) {
            self.backend = Some(backend);
            return Err(e.into());
        }
        let stats = Arc::clone(&self.stats);
        let features = self.acked_features;
        let thread = DeviceThread::spawn("virtio-net", self.failures.clone(), |kick, stop| {
            let worker = Worker::new(mem, interrupt, queues, backend, features, kick, stop, stats)?;
            Ok(move || worker.run())
        })?;
        self.running = Some(thread);
        Ok(())
    }

    fn queue_notify(&mut self, _queue_index: u32) {
        if let Some(running) = &self.running {
            running.kick();
        }
    }

    fn reset(&mut self) -> bool {
        self.stop_thread();
        true
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.stop_thread();
    }
}
