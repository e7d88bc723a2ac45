//! Tap devices on `/dev/net/tun`: the fd hull-vmm reads and writes the
//! guest NIC's frames through.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;

use super::NetError;

/// The virtio-net header in front of every frame on the fd: the 12-byte
/// `virtio_net_hdr_v1` of a VIRTIO_F_VERSION_1 device.
pub const VNET_HDR_BYTES: usize = 12;

const TUN_PATH: &str = "/dev/net/tun";

nix::ioctl_write_ptr_bad!(tun_set_iff, libc::TUNSETIFF, libc::ifreq);
nix::ioctl_write_ptr_bad!(tun_set_vnet_hdr_sz, libc::TUNSETVNETHDRSZ, libc::c_int);

/// What kind of device to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TunKind {
    /// An Ethernet tap with a virtio-net header on each frame.
    VnetTap,
    /// An L3 tun (IP packets, no header): only the tests make one, to see
    /// a link without an Ethernet address refused.
    #[cfg_attr(not(test), allow(dead_code))]
    L3Tun,
}

/// Creates the device `name` and returns its fd; the device lives until
/// the last copy of the fd is closed or it is deleted.
pub(super) fn open(name: &str, kind: TunKind) -> Result<File, NetError> {
    let tap_error = |what: &'static str| {
        move |source: std::io::Error| NetError::Tap {
            name: name.to_string(),
            what,
            source,
        }
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(TUN_PATH)
        .map_err(tap_error("open /dev/net/tun"))?;
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    // The name must leave room for the NUL the zeroed struct provides.
    if name.is_empty() || name.len() >= request.ifr_name.len() {
        return Err(tap_error("name")(std::io::Error::from_raw_os_error(
            libc::EINVAL,
        )));
    }
    for (dst, src) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    let flags = match kind {
        TunKind::VnetTap => libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR,
        TunKind::L3Tun => libc::IFF_TUN | libc::IFF_NO_PI,
    };
    // The flags fit: every IFF_* value used here is below 0x8000.
    request.ifr_ifru.ifru_flags = flags as libc::c_short;
    // SAFETY: TUNSETIFF reads one ifreq, which lives across the call; the
    // fd is an open /dev/net/tun.
    unsafe { tun_set_iff(file.as_raw_fd(), &request) }
        .map_err(|errno| tap_error("TUNSETIFF")(errno.into()))?;
    if kind == TunKind::VnetTap {
        let size = VNET_HDR_BYTES as libc::c_int;
        // SAFETY: TUNSETVNETHDRSZ reads one int, which lives across the
        // call; the fd is the tap just made.
        unsafe { tun_set_vnet_hdr_sz(file.as_raw_fd(), &size) }
            .map_err(|errno| tap_error("TUNSETVNETHDRSZ")(errno.into()))?;
    }
    Ok(file)
}
