//! Address buses for port I/O and MMIO exits: a sorted map from address
//! ranges to devices. vCPU threads share one bus; each device sits behind its
//! own mutex, so two vCPUs touching different devices do not contend.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A device on a bus. `offset` is relative to the base of its range.
pub trait BusDevice: Send {
    /// Guest read of `data.len()` bytes at `offset`; fill `data`.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// Guest write of `data` at `offset`.
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// Errors building a bus.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    #[error("bus range {base:#x}+{len:#x} overlaps another device")]
    Overlap { base: u64, len: u64 },
    #[error("bus range at {base:#x} has zero length")]
    ZeroLength { base: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Range {
    base: u64,
    len: u64,
}

/// A shared, thread-safe device handle.
pub type SharedDevice = Arc<Mutex<dyn BusDevice>>;

/// An address space of devices.
#[derive(Default, Clone)]
pub struct Bus {
    devices: BTreeMap<Range, SharedDevice>,
}

impl Bus {
    pub fn new() -> Self {
        Self::default()
    }

    /// Places `device` at `[base, base + len)`.
    pub fn insert(&mut self, device: SharedDevice, base: u64, len: u64) -> Result<(), BusError> {
        if len == 0 {
            return Err(BusError::ZeroLength { base });
        }
        let end = base
            .checked_add(len)
            .ok_or(BusError::Overlap { base, len })?;
        let overlaps = self
            .devices
            .keys()
            .any(|r| base < r.base.saturating_add(r.len) && r.base < end);
        if overlaps {
            return Err(BusError::Overlap { base, len });
        }
        self.devices.insert(Range { base, len }, device);
        Ok(())
    }

    fn resolve(&self, addr: u64, size: usize) -> Option<(u64, &SharedDevice)> {
        let (range, dev) = self
            .devices
            .range(
                ..=Range {
                    base: addr,
                    len: u64::MAX,
                },
            )
            .next_back()?;
        let offset = addr - range.base;
        (offset.checked_add(size as u64)? <= range.len).then_some((offset, dev))
    }

    /// Dispatches a read; returns false (and leaves `data` alone) when no
    /// device covers the access.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        match self.resolve(addr, data.len()) {
            Some((offset, dev)) => {
                lock(dev).read(offset, data);
                true
            }
            None => false,
        }
    }

    /// Dispatches a write; returns false when no device covers the access.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        match self.resolve(addr, data.len()) {
            Some((offset, dev)) => {
                lock(dev).write(offset, data);
                true
            }
            None => false,
        }
    }
}

/// Locks a device, recovering from a poisoned mutex: a device whose handler
/// panicked keeps its last state rather than taking every vCPU down with it.
fn lock(dev: &SharedDevice) -> std::sync::MutexGuard<'_, dyn BusDevice + 'static> {
    dev.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo {
        last: Vec<(u64, Vec<u8>)>,
    }

    impl BusDevice for Echo {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.last.push((offset, data.to_vec()));
        }
    }

    fn echo() -> Arc<Mutex<Echo>> {
        Arc::new(Mutex::new(Echo { last: Vec::new() }))
    }

    #[test]
    fn dispatches_by_range_with_relative_offsets() {
        let mut bus = Bus::new();
        let a = echo();
        bus.insert(a.clone(), 0x3f8, 8).unwrap();
        let mut buf = [0u8; 1];
        assert!(bus.read(0x3fa, &mut buf));
        assert_eq!(buf, [2]);
        assert!(bus.write(0x3ff, &[9]));
        assert_eq!(a.lock().unwrap().last, vec![(7, vec![9])]);
        assert!(!bus.read(0x400, &mut buf));
        assert!(!bus.read(0x3f7, &mut buf));
        // An access straddling the end of a range is not dispatched.
        assert!(!bus.read(0x3ff, &mut [0u8; 2]));
    }

    #[test]
    fn rejects_overlaps_and_empty_ranges() {
        let mut bus = Bus::new();
        bus.insert(echo(), 0x1000, 0x1000).unwrap();
        assert_eq!(
            bus.insert(echo(), 0x1fff, 2),
            Err(BusError::Overlap {
                base: 0x1fff,
                len: 2
            })
        );
        assert_eq!(
            bus.insert(echo(), 0x800, 0x801),
            Err(BusError::Overlap {
                base: 0x800,
                len: 0x801
            })
        );
        assert_eq!(
            bus.insert(echo(), 0x5000, 0),
            Err(BusError::ZeroLength { base: 0x5000 })
        );
        bus.insert(echo(), 0x2000, 1).unwrap();
        bus.insert(echo(), 0x800, 0x800).unwrap();
    }
}
