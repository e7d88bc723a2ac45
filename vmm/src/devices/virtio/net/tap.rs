//! The tap backend: a `/dev/net/tun` file in tap mode with a 12-byte vnet
//! header, non-blocking, opened by interface name or adopted from an
//! inherited fd.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use super::{NetError, F_GUEST_CSUM, F_GUEST_TSO4, F_GUEST_TSO6, F_GUEST_UFO, VNET_HDR_LEN_BYTES};

/// The tun/tap control device.
const TUN_PATH: &str = "/dev/net/tun";
/// The flags a tap must have for this device.
const REQUIRED_FLAGS: i32 = libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR;

/// What the device thread needs from the host side of a NIC: frames in and
/// out, each led by its vnet header, and a pollable fd.
pub trait NetBackend: AsRawFd + Send {
    /// Reads one frame into `buf` (`WouldBlock` when none waits).
    fn read_frame(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes one frame (`WouldBlock` when the backend is full).
    fn write_frame(&mut self, frame: &[u8]) -> io::Result<usize>;
    /// Tells the backend which offloads (`TUN_F_*`) the guest accepts.
    fn set_offload(&mut self, tun_flags: u32) -> io::Result<()>;
}

/// An open tap.
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
}

impl Tap {
    /// Opens (creating it if missing) the tap `name` in the caller's network
    /// namespace, with `IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`.
    pub fn open(name: &str) -> Result<Self, NetError> {
        let mut ifr = ifreq_named(name)?;
        let file = File::options()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(TUN_PATH)
            .map_err(|source| NetError::OpenTun {
                name: name.to_string(),
                source,
            })?;
        // Only the short member of the union is set; the flags fit a c_short.
        ifr.ifr_ifru.ifru_flags = REQUIRED_FLAGS as libc::c_short;
        // SAFETY: `file` is an open tun fd and `ifr` a valid, initialised
        // ifreq that outlives the call; TUNSETIFF reads and writes only it.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut ifr) };
        let tap = Self {
            file,
            name: name.to_string(),
        };
        tap.check("TUNSETIFF", rc)?;
        tap.set_vnet_hdr_size()?;
        Ok(tap)
    }

    /// Takes ownership of the inherited tap `fd` after checking it is an
    /// open tap with `IFF_NO_PI` and `IFF_VNET_HDR`; makes it non-blocking
    /// and close-on-exec.
    ///
    /// The caller must pass each fd once and own no other handle to it.
    pub fn from_fd(fd: RawFd) -> Result<Self, NetError> {
        // SAFETY: F_GETFD only reads the descriptor table entry.
        if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(NetError::FdNotOpen(fd));
        }
        // SAFETY: `fd` is open (checked above) and, per this function's
        // contract, owned by nobody else in this process from now on.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut tap = Self {
            file: File::from(owned),
            name: format!("fd {fd}"),
        };
        // SAFETY: an all-zero ifreq is a valid value of the plain C struct.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        // SAFETY: `ifr` is valid for writes and outlives the call; TUNGETIFF
        // writes the name and flags into it (ENOTTY/EBADFD on a non-tun fd).
        let rc = unsafe { libc::ioctl(fd, libc::TUNGETIFF, &mut ifr) };
        if rc < 0 {
            return Err(NetError::NotATap { fd, flags: 0 });
        }
        // SAFETY: TUNGETIFF filled the flags member.
        let flags = i32::from(unsafe { ifr.ifr_ifru.ifru_flags }) & 0xffff;
        if flags & (libc::IFF_TAP | libc::IFF_NO_PI) != libc::IFF_TAP | libc::IFF_NO_PI {
            return Err(NetError::NotATap { fd, flags });
        }
        if flags & libc::IFF_VNET_HDR == 0 {
            return Err(NetError::NoVnetHeader { fd, flags });
        }
        let name: Vec<u8> = ifr
            .ifr_name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        tap.name = String::from_utf8_lossy(&name).into_owned();
        // SAFETY: F_GETFL/F_SETFL/F_SETFD on an fd we own, integer arguments.
        let rc = unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            if fl < 0 {
                fl
            } else {
                let rc = libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
                if rc < 0 {
                    rc
                } else {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC)
                }
            }
        };
        tap.check("fcntl(O_NONBLOCK)", rc)?;
        tap.set_vnet_hdr_size()?;
        Ok(tap)
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn set_vnet_hdr_size(&self) -> Result<(), NetError> {
        let size = VNET_HDR_LEN_BYTES as libc::c_int;
        // SAFETY: TUNSETVNETHDRSZ reads one c_int through the pointer, which
        // is valid for the call.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), libc::TUNSETVNETHDRSZ, &size) };
        self.check("TUNSETVNETHDRSZ", rc)
    }

    fn check(&self, what: &'static str, rc: libc::c_int) -> Result<(), NetError> {
        if rc < 0 {
            return Err(NetError::Ioctl {
                what,
                tap: self.name.clone(),
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl NetBackend for Tap {
    fn read_frame(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }

    fn write_frame(&mut self, frame: &[u8]) -> io::Result<usize> {
        self.file.write(frame)
    }

    fn set_offload(&mut self, tun_flags: u32) -> io::Result<()> {
        // SAFETY: TUNSETOFFLOAD takes its argument by value; no memory is
        // passed.
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                libc::c_ulong::from(tun_flags),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The `TUN_F_*` offloads a guest with `features` can receive. Segmentation
/// offloads are only offered with checksum offload (the tap refuses them
/// alone).
pub fn tun_offload_flags(features: u64) -> u32 {
    if features & F_GUEST_CSUM == 0 {
        return 0;
    }
    let mut flags = libc::TUN_F_CSUM;
    for (feature, flag) in [
        (F_GUEST_TSO4, libc::TUN_F_TSO4),
        (F_GUEST_TSO6, libc::TUN_F_TSO6),
        (F_GUEST_UFO, libc::TUN_F_UFO),
    ] {
        if features & feature != 0 {
            flags |= flag;
        }
    }
    flags
}

/// Whether `name` can be an interface name: 1 to 15 bytes, no `/`, no
/// whitespace, not `.` or `..`.
pub fn valid_tap_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b <= b' ' || b == 0x7f)
}

/// A zeroed ifreq naming `name`.
fn ifreq_named(name: &str) -> Result<libc::ifreq, NetError> {
    if !valid_tap_name(name) {
        return Err(NetError::BadTapName(name.to_string()));
    }
    // SAFETY: an all-zero ifreq is a valid value of the plain C struct.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(ifr)
}
