//! virtio-vsock (virtio 1.2 §5.10), entirely in user space, with the
//! "hybrid" host side used by Firecracker and Cloud Hypervisor: guest
//! stream sockets map to host Unix sockets.
//!
//! * Host to guest: a host client connects to the device's Unix socket
//!   (`uds_path`) and writes `CONNECT <port>\n`. The device opens a stream to
//!   guest port `<port>` from a host ephemeral port; once the guest accepts,
//!   the client reads `OK <host port>\n` and the socket becomes a byte pipe
//!   to the guest. If nothing listens in the guest, the client is closed.
//! * Guest to host: a guest connection to CID 2 (the host), port `P`, is
//!   forwarded to the Unix socket `<uds_path>_P`; if that refuses, the guest
//!   gets a reset.
//!
//! Layout: [`packet`] validates the 44-byte header and payload the guest
//! puts in descriptor chains, [`csm`] is the per-connection state machine
//! and credit accounting, [`unix`] is the muxer that owns the host sockets,
//! [`device`] implements [`VirtioDevice`](super::VirtioDevice) and
//! [`event_handler`] is the device thread (epoll over the queue kick, the
//! listening socket and every connection socket).
//!
//! Flow control: the device advertises [`CONN_BUF_SIZE`] bytes of buffer per
//! connection and only acknowledges (`fwd_cnt`) bytes once written to the
//! host socket, so a slow host reader stalls the guest writer. Toward the
//! guest, it never reads more from a host socket than the guest has credit
//! for, and never reads at all while no receive buffer is waiting.

pub mod csm;
pub mod device;
pub mod event_handler;
pub mod packet;
pub mod unix;

#[cfg(test)]
mod tests;

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

pub use device::Vsock;

/// Queue indices.
pub const RX_QUEUE: usize = 0;
pub const TX_QUEUE: usize = 1;
pub const EVENT_QUEUE: usize = 2;
/// Size of each queue.
pub const QUEUE_SIZE: u16 = 256;

/// The host's CID.
pub const HOST_CID: u64 = 2;
/// The only socket type supported.
pub const TYPE_STREAM: u16 = 1;

/// Operations (`op` field).
pub const OP_REQUEST: u16 = 1;
pub const OP_RESPONSE: u16 = 2;
pub const OP_RST: u16 = 3;
pub const OP_SHUTDOWN: u16 = 4;
pub const OP_RW: u16 = 5;
pub const OP_CREDIT_UPDATE: u16 = 6;
pub const OP_CREDIT_REQUEST: u16 = 7;

/// `OP_SHUTDOWN` flags: the sender will receive / send no more.
pub const SHUTDOWN_RCV: u32 = 1;
pub const SHUTDOWN_SEND: u32 = 2;
pub const SHUTDOWN_BOTH: u32 = SHUTDOWN_RCV | SHUTDOWN_SEND;

/// Receive buffer the device advertises per connection (`buf_alloc`): the
/// most guest bytes it holds for a host socket that is not reading.
pub const CONN_BUF_SIZE: u32 = 64 * 1024;
/// Largest payload accepted in, or produced for, one packet.
pub const MAX_PKT_PAYLOAD: u32 = 64 * 1024;
/// Most live connections (and not yet identified host clients).
pub const MAX_CONNECTIONS: usize = 1024;
/// Longest accepted `CONNECT <port>\n` line, newline included.
pub const MAX_CONNECT_LINE: usize = 32;
/// First host-side ephemeral port for host-initiated connections.
pub const FIRST_LOCAL_PORT: u32 = 1024;

/// Errors of the vsock device.
#[derive(Debug, thiserror::Error)]
pub enum VsockError {
    #[error("guest cid {0} is reserved or out of range")]
    InvalidCid(u64),
    #[error("cannot bind the vsock unix socket: {0}")]
    Bind(io::Error),
    #[error("vsock i/o setup failed: {0}")]
    Io(#[from] io::Error),
}

/// Counters of what the device did, shared with its thread.
#[derive(Debug, Default)]
pub struct VsockStats {
    /// TX chains dropped as malformed.
    pub bad_tx_packets: AtomicU64,
    /// RX chains returned unused as malformed (read-only, too small, ...).
    pub bad_rx_buffers: AtomicU64,
    /// Well-formed packets dropped (wrong CID, unknown connection, ...).
    pub dropped_packets: AtomicU64,
    /// Connections established (both directions).
    pub connections: AtomicU64,
    /// Resets sent to the guest.
    pub resets_sent: AtomicU64,
}

impl VsockStats {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot of a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
