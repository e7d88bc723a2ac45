//! The virtio-fs device model ([`VirtioDevice`] implementation).

use std::sync::Arc;

use fuse_backend_rs::api::server::Server;
use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

use super::event_handler::{FsServer, Worker};
use super::{
    FsConfig, FsError, FsStats, ShareFs, CONFIG_SPACE_LEN, NUM_REQUEST_QUEUES, QUEUE_SIZE, TAG_LEN,
};
use crate::devices::virtio::thread::DeviceThread;
use crate::devices::virtio::{
    expect_queues, ActivateError, Interrupt, VirtioDevice, FEATURE_VERSION_1, TYPE_FS,
};
use crate::event::DeviceFailures;

/// A virtio-fs device sharing one host directory (see the module docs).
pub struct Fs {
    config: FsConfig,
    config_space: [u8; CONFIG_SPACE_LEN],
    server: Arc<FsServer>,
    stats: Arc<FsStats>,
    running: Option<DeviceThread<()>>,
    failures: DeviceFailures,
}

impl Fs {
    /// Validates `config` and opens the share; nothing is served until the
    /// driver activates the device.
    pub fn new(config: FsConfig) -> Result<Self, FsError> {
        let fs = ShareFs::new(&config)?;
        let mut config_space = [0u8; CONFIG_SPACE_LEN];
        config_space[..TAG_LEN].copy_from_slice(&config.tag_bytes());
        config_space[TAG_LEN..].copy_from_slice(&NUM_REQUEST_QUEUES.to_le_bytes());
        Ok(Self {
            config,
            config_space,
            server: Arc::new(Server::new(Arc::new(fs))),
            stats: Arc::new(FsStats::default()),
            running: None,
            failures: DeviceFailures::default(),
        })
    }

    pub fn config(&self) -> &FsConfig {
        &self.config
    }

    /// Reports a failure of the device's thread through `failures`.
    pub fn with_failures(mut self, failures: DeviceFailures) -> Self {
        self.failures = failures;
        self
    }

    /// The device's counters.
    pub fn stats(&self) -> Arc<FsStats> {
        Arc::clone(&self.stats)
    }

    fn stop_thread(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop();
        }
    }
}

impl VirtioDevice for Fs {
    fn device_type(&self) -> u32 {
        TYPE_FS
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE; 1 + NUM_REQUEST_QUEUES as usize]
    }

    fn avail_features(&self) -> u64 {
        FEATURE_VERSION_1
    }

    fn ack_features(&mut self, _features: u64) {}

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        crate::devices::virtio::read_config_bytes(&self.config_space, offset, data);
    }

    /// The configuration space is read-only.
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
        let queues = Vec::from(expect_queues::<{ 1 + NUM_REQUEST_QUEUES as usize }>(
            queues,
        )?);
        let (server, stats) = (Arc::clone(&self.server), Arc::clone(&self.stats));
        let thread = DeviceThread::spawn("hull-fs", self.failures.clone(), |kick, stop| {
            let worker = Worker::new(mem, interrupt, queues, server, kick, stop, stats)?;
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

impl Drop for Fs {
    fn drop(&mut self) {
        self.stop_thread();
    }
}
