//! virtio-net (virtio 1.2 §5.1) in user space over a Linux tap device.
//!
//! One receive and one transmit queue, no control queue. Frames cross the
//! device with their 12-byte `virtio_net_hdr_v1` untouched: the tap is opened
//! (or must have been opened) with `IFF_VNET_HDR` and its header size set to
//! 12, so checksum and segmentation offloads pass straight between the guest
//! and the host kernel. The tap is told which offloads the guest accepts
//! (`TUNSETOFFLOAD`) once features are negotiated.
//!
//! Layout: [`tap`] is the backend (open by name or adopt an inherited fd),
//! [`tx`] gathers guest chains into frames, [`rx`] spreads frames over
//! (mergeable) receive buffers, [`event_handler`] is the device thread and
//! [`device`] implements [`VirtioDevice`](super::VirtioDevice).
//!
//! Nothing is queued without bound: while the guest posts no receive
//! buffers, at most one frame read from the tap waits and the tap is not read
//! until a receive-queue kick; while the tap refuses writes (`EAGAIN`), the
//! transmit chain stays in the ring until the tap is writable again.

pub mod device;
pub mod event_handler;
pub mod rx;
pub mod tap;
pub mod tx;

#[cfg(test)]
mod tap_tests;
#[cfg(test)]
mod tests;

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};

use virtio_bindings::virtio_net;

pub use device::Net;
pub use tap::{NetBackend, Tap};

/// Queue indices.
pub const RX_QUEUE: usize = 0;
pub const TX_QUEUE: usize = 1;
/// Size of each queue.
pub const QUEUE_SIZE: u16 = 256;

/// The header in front of every frame (`virtio_net_hdr_v1`, VERSION_1).
pub const VNET_HDR_LEN_BYTES: usize = std::mem::size_of::<virtio_net::virtio_net_hdr_v1>();
/// Offset of `num_buffers` in the header.
pub const NUM_BUFFERS_OFFSET_BYTES: usize = 10;
/// An Ethernet header: the least a frame after the vnet header must hold.
pub const ETH_HDR_LEN_BYTES: usize = 14;
/// The largest frame, header included: a 64 KiB GSO packet, its Ethernet
/// header and the vnet header.
pub const MAX_FRAME_BYTES: usize = 65562;
/// Most frames moved in one direction per wake-up, so one busy direction
/// cannot starve the other.
pub const MAX_FRAMES_PER_PASS: usize = 256;

/// The MTU offered when none is configured.
pub const DEFAULT_MTU: u16 = 1500;
/// Smallest MTU accepted (IPv4's minimum).
pub const MIN_MTU: u16 = 68;
/// Most NICs one VM may have.
pub const MAX_NICS: usize = 16;

/// Feature bits, as masks.
const fn bit(n: u32) -> u64 {
    1 << n
}
pub const F_CSUM: u64 = bit(virtio_net::VIRTIO_NET_F_CSUM);
pub const F_GUEST_CSUM: u64 = bit(virtio_net::VIRTIO_NET_F_GUEST_CSUM);
pub const F_MTU: u64 = bit(virtio_net::VIRTIO_NET_F_MTU);
pub const F_MAC: u64 = bit(virtio_net::VIRTIO_NET_F_MAC);
pub const F_GUEST_TSO4: u64 = bit(virtio_net::VIRTIO_NET_F_GUEST_TSO4);
pub const F_GUEST_TSO6: u64 = bit(virtio_net::VIRTIO_NET_F_GUEST_TSO6);
pub const F_GUEST_UFO: u64 = bit(virtio_net::VIRTIO_NET_F_GUEST_UFO);
pub const F_HOST_TSO4: u64 = bit(virtio_net::VIRTIO_NET_F_HOST_TSO4);
pub const F_HOST_TSO6: u64 = bit(virtio_net::VIRTIO_NET_F_HOST_TSO6);
pub const F_HOST_UFO: u64 = bit(virtio_net::VIRTIO_NET_F_HOST_UFO);
pub const F_MRG_RXBUF: u64 = bit(virtio_net::VIRTIO_NET_F_MRG_RXBUF);
pub const F_STATUS: u64 = bit(virtio_net::VIRTIO_NET_F_STATUS);
/// `status` in the configuration space: the link is up.
pub const S_LINK_UP: u16 = virtio_net::VIRTIO_NET_S_LINK_UP as u16;

/// Where the frames go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapSource {
    /// An inherited, already configured tap fd (opened with `IFF_VNET_HDR`);
    /// the device takes ownership of it.
    Fd(RawFd),
    /// A tap interface opened by name in hull-vmm's network namespace.
    Name(String),
}

/// One NIC as configured on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    pub source: TapSource,
    pub mac: [u8; 6],
    /// The MTU the guest is told (`VIRTIO_NET_F_MTU`); [`DEFAULT_MTU`] if none.
    pub mtu: Option<u16>,
}

impl NetConfig {
    /// The MTU offered to the guest.
    pub fn mtu(&self) -> u16 {
        self.mtu.unwrap_or(DEFAULT_MTU)
    }
}

/// Errors of the net device.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot open /dev/net/tun for tap {name}: {source}")]
    OpenTun { name: String, source: io::Error },
    #[error("tap name {0:?} is empty, too long or not a plain name")]
    BadTapName(String),
    #[error("{what} on tap {tap} failed: {source}")]
    Ioctl {
        what: &'static str,
        tap: String,
        source: io::Error,
    },
    #[error("fd {0} is not open")]
    FdNotOpen(RawFd),
    #[error("fd {fd} is not a tap (flags {flags:#x}); it needs IFF_TAP")]
    NotATap { fd: RawFd, flags: i32 },
    #[error("tap fd {fd} was opened without IFF_VNET_HDR (flags {flags:#x})")]
    NoVnetHeader { fd: RawFd, flags: i32 },
    #[error("mtu {0} is out of range ({MIN_MTU} to 65535)")]
    BadMtu(u16),
}

/// Counters of what the device did, shared with its thread.
#[derive(Debug, Default)]
pub struct NetStats {
    /// Frames written to the tap.
    pub tx_frames: AtomicU64,
    /// TX chains dropped as malformed (writable descriptor, shorter than a
    /// vnet and Ethernet header, longer than [`MAX_FRAME_BYTES`], outside
    /// guest memory).
    pub tx_bad_chains: AtomicU64,
    /// Well-formed frames the tap refused (other than `EAGAIN`; e.g. the
    /// tap is down or the vnet header is invalid) and that were dropped.
    pub tx_errors: AtomicU64,
    /// Frames delivered to the guest.
    pub rx_frames: AtomicU64,
    /// RX chains returned unused as malformed (read-only descriptor,
    /// shorter than the vnet header, outside guest memory).
    pub rx_bad_chains: AtomicU64,
    /// Frames from the tap dropped: shorter than the vnet header, or larger
    /// than a receive buffer without mergeable buffers.
    pub rx_dropped_frames: AtomicU64,
}

impl NetStats {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot of a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
