//! virtio-rng (virtio 1.2 §5.4): one request queue; the driver posts
//! device-writable buffers and the device fills them from the host's
//! `getrandom`. Small, but it exercises the whole virtio-mmio path (feature
//! negotiation, queue set-up, notifications, used ring, irqfd interrupts).

mod device;

pub use device::Rng;

/// The one queue, and its size.
pub const QUEUE_SIZE: u16 = 256;
/// Most bytes served for one descriptor chain; bounds the work a guest request costs.
pub const MAX_CHAIN_BYTES: u32 = 64 * 1024;

/// Counters of what the device did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RngStats {
    pub bytes_served: u64,
    pub requests: u64,
    /// Chains the guest sent that could not be served (bad addresses, no
    /// writable descriptors, queue errors).
    pub bad_requests: u64,
}
