//! What virtio devices the VMM gave the guest, from sysfs.

/// virtio device id of a vsock device.
pub const DEVICE_ID_VSOCK: u32 = 19;
/// virtio device id of a virtio-fs device.
pub const DEVICE_ID_FS: u32 = 26;

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// How long to wait for the first bytes from /dev/hwrng: long, because only
/// a broken device takes it, and guest time in a nested test host is slow.
const HWRNG_WAIT: Duration = Duration::from_secs(30);

/// The virtio devices present: (device id, whether a driver is bound).
fn devices() -> Vec<(u32, bool)> {
    let Ok(dir) = std::fs::read_dir("/sys/bus/virtio/devices") else {
        return Vec::new();
    };
    let mut found: Vec<(u32, bool)> = dir
        .flatten()
        .filter_map(|dev| {
            let id = std::fs::read_to_string(dev.path().join("device")).ok()?;
            let id = u32::from_str_radix(id.trim().trim_start_matches("0x"), 16).ok()?;
            Some((id, dev.path().join("driver").exists()))
        })
        .collect();
    found.sort_unstable();
    found
}

/// Whether a virtio device with this id is present.
pub fn has_device(id: u32) -> bool {
    devices().iter().any(|&(d, _)| d == id)
}

/// Ids of the virtio devices a guest driver has bound.
pub fn bound_devices() -> Vec<u32> {
    devices()
        .into_iter()
        .filter(|&(_, bound)| bound)
        .map(|(id, _)| id)
        .collect()
}

/// Reads up to 16 bytes from the hardware RNG, waiting at most `HWRNG_WAIT`.
pub fn hwrng_bytes() -> u32 {
    if !Path::new("/dev/hwrng").exists() {
        return 0;
    }
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::Builder::new()
        .name("hwrng".into())
        .spawn(move || {
            let mut buf = [0u8; 16];
            let n = std::fs::File::open("/dev/hwrng")
                .and_then(|mut f| std::io::Read::read(&mut f, &mut buf))
                .unwrap_or(0);
            let _ = tx.send(n as u32);
        });
    match reader {
        Ok(_) => rx.recv_timeout(HWRNG_WAIT).unwrap_or(0),
        Err(_) => 0,
    }
}
