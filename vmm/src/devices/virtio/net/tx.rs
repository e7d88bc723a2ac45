//! Transmit: each TX chain (vnet header, then the frame, in any number of
//! readable descriptors) is gathered into one buffer and written to the tap
//! in one call, header as the guest gave it.

use std::io;
use std::ops::Deref;

use virtio_queue::{DescriptorChain, QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestMemory, GuestMemoryMmap};

use super::event_handler::Worker;
use super::{
    NetStats, ETH_HDR_LEN_BYTES, MAX_FRAMES_PER_PASS, MAX_FRAME_BYTES, TX_QUEUE, VNET_HDR_LEN_BYTES,
};

/// Why a TX chain was dropped.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("tx chain has a device-writable descriptor")]
    WritableDescriptor,
    #[error("tx chain of {len} bytes is shorter than a vnet and ethernet header")]
    TooShort { len: usize },
    #[error("tx chain is longer than {MAX_FRAME_BYTES} bytes")]
    TooLong,
    #[error("tx descriptor at {addr:#x} (+{len}) is outside guest memory")]
    Memory { addr: u64, len: u32 },
}

/// Copies the chain's descriptors, in order, into `buf` (cleared first).
pub fn gather<M>(
    mem: &GuestMemoryMmap,
    chain: DescriptorChain<M>,
    buf: &mut Vec<u8>,
) -> Result<(), TxError>
where
    M: Deref,
    M::Target: GuestMemory,
{
    buf.clear();
    for desc in chain {
        if desc.is_write_only() {
            return Err(TxError::WritableDescriptor);
        }
        let start = buf.len();
        let len = desc.len() as usize;
        let end = start
            .checked_add(len)
            .filter(|&end| end <= MAX_FRAME_BYTES)
            .ok_or(TxError::TooLong)?;
        buf.resize(end, 0);
        let mem_err = || TxError::Memory {
            addr: desc.addr().0,
            len: desc.len(),
        };
        let dst = buf.get_mut(start..end).ok_or_else(mem_err)?;
        mem.read_slice(dst, desc.addr()).map_err(|_| mem_err())?;
    }
    if buf.len() < VNET_HDR_LEN_BYTES + ETH_HDR_LEN_BYTES {
        return Err(TxError::TooShort { len: buf.len() });
    }
    Ok(())
}

impl Worker {
    /// Writes every available TX chain to the tap (at most
    /// [`MAX_FRAMES_PER_PASS`]). Returns whether the used ring changed.
    pub(super) fn process_tx(&mut self) -> bool {
        if self.tx_blocked {
            return false;
        }
        let Some(queue) = self.queues.get_mut(TX_QUEUE).filter(|q| q.ready()) else {
            return false;
        };
        let mut used = false;
        let mut frames = 0;
        loop {
            let _ = queue.disable_notification(&self.mem);
            while let Some(chain) = queue.pop_descriptor_chain(&self.mem) {
                let head = chain.head_index();
                match gather(&self.mem, chain, &mut self.tx_buf) {
                    Ok(()) => match self.backend.write_frame(&self.tx_buf) {
                        Ok(_) => NetStats::bump(&self.stats.tx_frames),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            // Left in the ring, retried on EPOLLOUT.
                            queue.go_to_previous_position();
                            self.tx_blocked = true;
                            return used;
                        }
                        Err(_) => NetStats::bump(&self.stats.tx_errors),
                    },
                    Err(_) => NetStats::bump(&self.stats.tx_bad_chains),
                }
                if queue.add_used(&self.mem, head, 0).is_err() {
                    return used;
                }
                used = true;
                frames += 1;
                if frames >= MAX_FRAMES_PER_PASS {
                    // Let RX run; come back without waiting for a kick.
                    let _ = self.kick.write(1);
                    return used;
                }
            }
            match queue.enable_notification(&self.mem) {
                Ok(true) => continue,
                _ => return used,
            }
        }
    }
}
