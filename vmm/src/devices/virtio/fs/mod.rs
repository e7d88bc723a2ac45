//! virtio-fs (virtio 1.2 §5.11): a host directory shared with the guest,
//! served in process by `fuse-backend-rs`'s passthrough filesystem. The
//! guest mounts it with `mount -t virtiofs <tag> <dir>`.
//!
//! The device has one high-priority queue (FORGET and INTERRUPT requests)
//! and one request queue. Each descriptor chain carries one FUSE request
//! (device-readable part) and room for its reply (device-writable part);
//! the device thread ([`event_handler`]) turns a chain into
//! `fuse_backend_rs::transport::{Reader, Writer}` over guest memory and
//! hands it to a FUSE [`Server`](fuse_backend_rs::api::server::Server).
//!
//! Layout: [`config`] validates the share, [`filesystem`] builds the
//! passthrough filesystem and wraps it ([`ShareFs`]: read-only shares, no
//! host device nodes), [`device`] implements
//! [`VirtioDevice`](super::VirtioDevice), [`event_handler`] is the device
//! thread (epoll over the queue kick and a stop event).
//!
//! What the guest can reach: only names under `shared_dir`. Lookups are
//! `openat(O_PATH | O_NOFOLLOW)` relative to the parent's fd, one component
//! at a time (a name holding `/` is refused, `..` at the root is the root),
//! symlinks are returned as links for the guest kernel to resolve inside the
//! guest, and inodes are kept as O_PATH fds, never as file handles (no
//! `open_by_handle_at`).

pub mod config;
pub mod device;
pub mod event_handler;
pub mod filesystem;
pub mod limits;

#[cfg(test)]
mod escape_tests;
#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

pub use config::FsConfig;
pub use device::Fs;
pub use filesystem::ShareFs;

/// Queue indices.
pub const HIPRIO_QUEUE: usize = 0;
pub const REQUEST_QUEUE: usize = 1;
/// Number of request queues (the high-priority queue is not counted).
pub const NUM_REQUEST_QUEUES: u32 = 1;
/// Size of each queue.
pub const QUEUE_SIZE: u16 = 256;

/// Longest tag, in bytes (the config space field is 36 bytes, NUL-padded).
pub const TAG_LEN: usize = 36;
/// Size of the configuration space: `tag[36]` then `num_request_queues` (u32 LE).
pub const CONFIG_SPACE_LEN: usize = TAG_LEN + 4;

/// How long the guest may cache names and attributes, in seconds.
pub const ENTRY_TIMEOUT_SECS: u64 = 1;
pub const ATTR_TIMEOUT_SECS: u64 = 1;

/// Errors of the virtio-fs device.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("virtio-fs tag {0:?} must be 1 to {TAG_LEN} bytes without NUL")]
    InvalidTag(String),
    #[error("shared directory {path}: {source}")]
    SharedDir { path: PathBuf, source: io::Error },
    #[error("shared directory {0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("shared directory {0} is not valid utf-8")]
    NonUtf8Path(PathBuf),
    #[error("cannot set up the passthrough filesystem on {path}: {source}")]
    Passthrough { path: PathBuf, source: io::Error },
    #[error("virtio-fs i/o setup failed: {0}")]
    Io(#[from] io::Error),
}

/// Counters of what the device did, shared with its thread.
#[derive(Debug, Default)]
pub struct FsStats {
    /// Chains served (a reply written, or none needed).
    pub requests: AtomicU64,
    /// Chains dropped: unreadable descriptors, a FUSE request that could
    /// not be decoded, no room for the reply, used ring errors.
    pub bad_requests: AtomicU64,
}

impl FsStats {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot of a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
