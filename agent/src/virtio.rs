//! What virtio devices the VMM gave the guest, from sysfs.

/// virtio device id of a vsock device.
pub const DEVICE_ID_VSOCK: u32 = 19;

/// Whether a virtio device with this id is present.
pub fn has_device(id: u32) -> bool {
    let Ok(dir) = std::fs::read_dir("/sys/bus/virtio/devices") else {
        return false;
    };
    dir.flatten().any(|dev| {
        std::fs::read_to_string(dev.path().join("device"))
            .ok()
            .and_then(|s| u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok())
            == Some(id)
    })
}
