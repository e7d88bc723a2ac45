//! Virtio devices over MMIO.
