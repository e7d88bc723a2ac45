//! The control channel between the hull runtime and `hull-vmm`.
//!
//! The runtime makes a `SOCK_SEQPACKET` socket pair and hands one end to
//! hull-vmm as `--control-fd N`. Each packet is one JSON message of at most
//! [`MAX_MESSAGE_BYTES`]:
//!
//! - hull-vmm → runtime: [`VmmMessage`] — a sequence number, a
//!   CLOCK_MONOTONIC timestamp (ns) and either an [`Event`] (agent ready,
//!   power-off, reset, triple fault, a failed vCPU or device thread, …) or
//!   the [`Reply`] to a request. The last event before the channel closes
//!   is the VM's end ([`Event::is_end`]).
//! - runtime → hull-vmm: [`RequestMessage`] — an id and a [`Request`]
//!   (pause, resume, shutdown). Every request gets exactly one reply with
//!   its id.
//!
//! hull-vmm will be confined and is fed by a guest, so the runtime treats
//! what it sends as untrusted: [`Inbound`] refuses oversized packets, JSON
//! with unknown fields, overlong text, sequence numbers that do not
//! increase and anything after the end event.

mod codec;
mod message;
mod socket;

pub use codec::{decode, encode, CodecError, Inbound};
pub use message::{
    truncate_text, Body, Event, Reply, Request, RequestMessage, VmState, VmmMessage, MAX_TEXT_BYTES,
};
pub use socket::SeqPacket;

/// Nanoseconds on CLOCK_MONOTONIC: the clock of every timestamp on the
/// channel (and the one `Instant` uses on Linux), comparable across the
/// runtime and hull-vmm.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Version of this protocol, sent in [`Event::Hello`].
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest message (one packet) either side sends or accepts, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4096;
