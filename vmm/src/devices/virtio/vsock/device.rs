//! The virtio-vsock device model ([`VirtioDevice`] implementation).

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

use super::event_handler::Worker;
use super::unix::Muxer;
use super::{VsockError, VsockStats, HOST_CID, QUEUE_SIZE};
use crate::devices::virtio::thread::DeviceThread;
use crate::devices::virtio::{
    expect_queues, ActivateError, Interrupt, VirtioDevice, FEATURE_VERSION_1, TYPE_VSOCK,
};
use crate::event::DeviceFailures;

/// A virtio-vsock device backed by Unix sockets (see the module docs).
pub struct Vsock {
    guest_cid: u64,
    uds_path: PathBuf,
    listener: UnixListener,
    stats: Arc<VsockStats>,
    running: Option<DeviceThread<Muxer>>,
    failures: DeviceFailures,
}

impl Vsock {
    /// Binds the listening socket at `uds_path` for a guest with CID
    /// `guest_cid` (3 ..= 0xffff_fffe).
    pub fn new(guest_cid: u64, uds_path: PathBuf) -> Result<Self, VsockError> {
        if !(3..=0xffff_fffe).contains(&guest_cid) || guest_cid == HOST_CID {
            return Err(VsockError::InvalidCid(guest_cid));
        }
        let listener = UnixListener::bind(&uds_path).map_err(VsockError::Bind)?;
        listener.set_nonblocking(true)?;
        Ok(Self {
            guest_cid,
            uds_path,
            listener,
            stats: Arc::new(VsockStats::default()),
            running: None,
            failures: DeviceFailures::default(),
        })
    }

    pub fn guest_cid(&self) -> u64 {
        self.guest_cid
    }

    pub fn uds_path(&self) -> &Path {
        &self.uds_path
    }

    /// Reports a failure of the device's thread through `failures`.
    pub fn with_failures(mut self, failures: DeviceFailures) -> Self {
        self.failures = failures;
        self
    }

    /// The device's counters.
    pub fn stats(&self) -> Arc<VsockStats> {
        Arc::clone(&self.stats)
    }

    fn stop_thread(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop();
        }
    }
}

impl VirtioDevice for Vsock {
    fn device_type(&self) -> u32 {
        TYPE_VSOCK
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE; 3]
    }

    fn avail_features(&self) -> u64 {
        FEATURE_VERSION_1
    }

    fn ack_features(&mut self, _features: u64) {}

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        crate::devices::virtio::read_config_bytes(&self.guest_cid.to_le_bytes(), offset, data);
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
        let queues = Vec::from(expect_queues::<3>(queues)?);
        let listener = self.listener.try_clone()?;
        let muxer = Muxer::new(
            self.guest_cid,
            self.uds_path.clone(),
            listener,
            Arc::clone(&self.stats),
        )?;
        let stats = Arc::clone(&self.stats);
        let thread = DeviceThread::spawn("hull-vsock", self.failures.clone(), |kick, stop| {
            let worker = Worker::new(mem, interrupt, queues, muxer, kick, stop, stats)?;
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

impl Drop for Vsock {
    fn drop(&mut self) {
        self.stop_thread();
        let _ = std::fs::remove_file(&self.uds_path);
    }
}
