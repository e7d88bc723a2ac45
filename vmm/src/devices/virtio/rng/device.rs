//! The virtio-rng device model.

use std::sync::Arc;

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestMemoryMmap};

use super::{RngStats, MAX_CHAIN_BYTES, QUEUE_SIZE};
use crate::devices::virtio::{
    expect_queues, ActivateError, Interrupt, VirtioDevice, FEATURE_VERSION_1, TYPE_RNG,
};

struct Active {
    mem: GuestMemoryMmap,
    interrupt: Arc<Interrupt>,
    queue: Queue,
}

/// An entropy device.
#[derive(Default)]
pub struct Rng {
    active: Option<Active>,
    stats: RngStats,
}

fn fill_random(buf: &mut [u8]) -> bool {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: `rest` is a valid, writable buffer of `rest.len()` bytes.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n <= 0 {
            return false;
        }
        done += n as usize;
    }
    true
}

impl Rng {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stats(&self) -> RngStats {
        self.stats
    }

    /// Serves every available request; interrupts the guest if it wants it.
    fn process_queue(&mut self) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let mut used_any = false;
        while let Some(chain) = active.queue.pop_descriptor_chain(&active.mem) {
            let head = chain.head_index();
            let mut written = 0u32;
            let mut ok = true;
            for desc in chain.writable() {
                let len = desc.len().min(MAX_CHAIN_BYTES - written);
                if len == 0 {
                    break;
                }
                let mut buf = vec![0u8; len as usize];
                if !fill_random(&mut buf) || active.mem.write_slice(&buf, desc.addr()).is_err() {
                    ok = false;
                    break;
                }
                written += len;
            }
            if !ok || written == 0 {
                self.stats.bad_requests += 1;
            }
            self.stats.requests += 1;
            self.stats.bytes_served += u64::from(written);
            if active.queue.add_used(&active.mem, head, written).is_err() {
                self.stats.bad_requests += 1;
                break;
            }
            used_any = true;
        }
        let notify = used_any && active.queue.needs_notification(&active.mem).unwrap_or(true);
        if notify && active.interrupt.signal_used_queue().is_err() {
            self.stats.bad_requests += 1;
        }
    }
}

impl VirtioDevice for Rng {
    fn device_type(&self) -> u32 {
        TYPE_RNG
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn avail_features(&self) -> u64 {
        FEATURE_VERSION_1
    }

    fn ack_features(&mut self, _features: u64) {}

    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write_config(&mut self, _offset: u64, _data: &[u8]) {}

    fn activate(
        &mut self,
        mem: GuestMemoryMmap,
        interrupt: Arc<Interrupt>,
        queues: Vec<Queue>,
    ) -> Result<(), ActivateError> {
        if self.active.is_some() {
            return Err(ActivateError::AlreadyActive);
        }
        let [queue] = expect_queues::<1>(queues)?;
        self.active = Some(Active {
            mem,
            interrupt,
            queue,
        });
        Ok(())
    }

    fn queue_notify(&mut self, queue_index: u32) {
        if queue_index == 0 {
            self.process_queue();
        }
    }

    fn reset(&mut self) -> bool {
        self.active = None;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtio_queue::desc::{split::Descriptor as SplitDescriptor, RawDescriptor};
    use virtio_queue::mock::MockSplitQueue;
    use vm_memory::GuestAddress;

    const VIRTQ_DESC_F_WRITE: u16 = 2;

    fn setup(descs: &[(u64, u32, u16)]) -> (Rng, GuestMemoryMmap, Arc<Interrupt>) {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
        let mock = MockSplitQueue::new(&mem, 16);
        let raw: Vec<RawDescriptor> = descs
            .iter()
            .map(|&(addr, len, flags)| {
                RawDescriptor::from(SplitDescriptor::new(addr, len, flags, 0))
            })
            .collect();
        mock.build_desc_chain(&raw).unwrap();
        let queue: Queue = mock.create_queue().unwrap();
        let interrupt = Arc::new(Interrupt::new().unwrap());
        let mut rng = Rng::new();
        rng.activate(mem.clone(), interrupt.clone(), vec![queue])
            .unwrap();
        (rng, mem, interrupt)
    }

    #[test]
    fn fills_writable_buffers_and_interrupts() {
        let (mut rng, mem, interrupt) = setup(&[(0x8000, 64, VIRTQ_DESC_F_WRITE)]);
        rng.queue_notify(0);
        let mut buf = [0u8; 64];
        mem.read_slice(&mut buf, GuestAddress(0x8000)).unwrap();
        assert_ne!(buf, [0u8; 64], "64 random bytes are not all zero");
        assert_eq!(
            rng.stats(),
            RngStats {
                bytes_served: 64,
                requests: 1,
                bad_requests: 0
            }
        );
        assert_eq!(interrupt.status() & 1, 1);
        assert_eq!(interrupt.eventfd().read().unwrap(), 1);
    }

    #[test]
    fn read_only_or_out_of_memory_buffers_are_counted_not_served() {
        let (mut rng, _mem, _) = setup(&[(0x8000, 64, 0)]);
        rng.queue_notify(0);
        assert_eq!(rng.stats().bytes_served, 0);
        assert_eq!(rng.stats().bad_requests, 1);
        let (mut rng, _mem, _) = setup(&[(0xff_fff0, 64, VIRTQ_DESC_F_WRITE)]);
        rng.queue_notify(0);
        assert_eq!(rng.stats().bad_requests, 1);
    }

    #[test]
    fn one_queue_only_and_reset_deactivates() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
        let interrupt = Arc::new(Interrupt::new().unwrap());
        let mut rng = Rng::new();
        assert!(matches!(
            rng.activate(mem, interrupt, vec![]),
            Err(ActivateError::QueueCount {
                expected: 1,
                got: 0
            })
        ));
        assert!(rng.reset());
        rng.queue_notify(0); // inactive: nothing happens, nothing panics
        assert_eq!(rng.stats(), RngStats::default());
    }
}
