//! Emulated devices: the buses, legacy x86 devices and virtio over MMIO.

pub mod bus;
pub mod legacy;
pub mod virtio;
