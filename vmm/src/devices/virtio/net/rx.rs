//! Receive: a frame read from the tap (vnet header first) is copied into
//! one receive chain, or with `VIRTIO_NET_F_MRG_RXBUF` spread over as many
//! chains as it needs, `num_buffers` telling the driver how many.
//!
//! If the ring runs out part way, every chain taken for the frame goes back
//! and the frame stays pending (the only frame held) until the next kick.

use std::io;

use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryMmap};

use super::event_handler::Worker;
use super::{
    NetStats, MAX_FRAMES_PER_PASS, NUM_BUFFERS_OFFSET_BYTES, RX_QUEUE, VNET_HDR_LEN_BYTES,
};

/// One usable receive chain: its head and its writable segments
/// (`segs[start..end]`).
#[derive(Debug, Clone, Copy)]
struct RxChain {
    head: u16,
    start: usize,
    end: usize,
    capacity: usize,
}

/// Reused lists of the chains taken for one frame.
#[derive(Debug, Default)]
pub struct RxScratch {
    segs: Vec<(GuestAddress, usize)>,
    good: Vec<RxChain>,
    bad: Vec<u16>,
}

impl RxScratch {
    fn clear(&mut self) {
        self.segs.clear();
        self.good.clear();
        self.bad.clear();
    }
}

/// What became of the pending frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Copied into the guest's buffers.
    Delivered,
    /// Too big for a receive buffer (no mergeable buffers); dropped.
    Dropped,
    /// Not enough buffers: nothing consumed, the frame stays pending.
    NoBuffers,
}

/// Takes the next chain into `scratch` (as good or bad). False when the
/// ring is empty.
fn take_chain(mem: &GuestMemoryMmap, queue: &mut Queue, scratch: &mut RxScratch) -> bool {
    let Some(chain) = queue.pop_descriptor_chain(mem) else {
        return false;
    };
    let head = chain.head_index();
    let start = scratch.segs.len();
    let mut capacity = 0usize;
    let mut ok = true;
    for desc in chain {
        let len = desc.len() as usize;
        if !desc.is_write_only() || !mem.check_range(desc.addr(), len) {
            ok = false;
            break;
        }
        capacity = capacity.saturating_add(len);
        scratch.segs.push((desc.addr(), len));
    }
    if ok && capacity >= VNET_HDR_LEN_BYTES {
        let end = scratch.segs.len();
        scratch.good.push(RxChain {
            head,
            start,
            end,
            capacity,
        });
    } else {
        scratch.segs.truncate(start);
        scratch.bad.push(head);
    }
    true
}

/// Copies `frame` into the RX ring (see the module docs).
pub fn deliver(
    mem: &GuestMemoryMmap,
    queue: &mut Queue,
    frame: &mut [u8],
    mergeable: bool,
    scratch: &mut RxScratch,
    stats: &NetStats,
) -> Delivery {
    scratch.clear();
    let fits = |s: &RxScratch| {
        if mergeable {
            s.good.iter().map(|c| c.capacity).sum::<usize>() >= frame.len()
        } else {
            !s.good.is_empty()
        }
    };
    while !fits(scratch) {
        if !take_chain(mem, queue, scratch) {
            if scratch.good.is_empty() {
                // Only malformed chains were taken: consume them.
                consume_bad(mem, queue, scratch, stats);
            } else {
                for _ in 0..scratch.good.len() + scratch.bad.len() {
                    queue.go_to_previous_position();
                }
            }
            return Delivery::NoBuffers;
        }
    }
    consume_bad(mem, queue, scratch, stats);
    let Some(first) = scratch.good.first() else {
        return Delivery::NoBuffers;
    };
    if !mergeable && first.capacity < frame.len() {
        // The chain stays for a frame that fits.
        queue.go_to_previous_position();
        return Delivery::Dropped;
    }
    let num_buffers = u16::try_from(scratch.good.len()).unwrap_or(u16::MAX);
    if let Some(field) = frame.get_mut(NUM_BUFFERS_OFFSET_BYTES..VNET_HDR_LEN_BYTES) {
        field.copy_from_slice(&num_buffers.to_le_bytes());
    }
    let mut rest: &[u8] = frame;
    for chain in &scratch.good {
        let mut written = 0usize;
        for &(addr, len) in scratch.segs.get(chain.start..chain.end).unwrap_or(&[]) {
            let n = len.min(rest.len());
            let (now, later) = rest.split_at(n);
            if mem.write_slice(now, addr).is_err() {
                break;
            }
            written += n;
            rest = later;
        }
        let written = u32::try_from(written).unwrap_or(u32::MAX);
        if queue.add_used(mem, chain.head, written).is_err() {
            break;
        }
    }
    Delivery::Delivered
}

fn consume_bad(
    mem: &GuestMemoryMmap,
    queue: &mut Queue,
    scratch: &mut RxScratch,
    stats: &NetStats,
) {
    for &head in &scratch.bad {
        NetStats::bump(&stats.rx_bad_chains);
        let _ = queue.add_used(mem, head, 0);
    }
    scratch.bad.clear();
}

impl Worker {
    /// Moves frames from the tap to the guest (at most
    /// [`MAX_FRAMES_PER_PASS`]); a frame without buffers stays pending.
    /// Returns whether the used ring changed; a tap read error is fatal.
    pub(super) fn process_rx(&mut self) -> io::Result<bool> {
        let Some(queue) = self.queues.get_mut(RX_QUEUE).filter(|q| q.ready()) else {
            return Ok(false);
        };
        let mut used = false;
        for _ in 0..MAX_FRAMES_PER_PASS {
            let len = match self.rx_pending {
                Some(len) => len,
                None => match self.backend.read_frame(&mut self.rx_buf) {
                    Ok(len) if len < VNET_HDR_LEN_BYTES => {
                        NetStats::bump(&self.stats.rx_dropped_frames);
                        continue;
                    }
                    Ok(len) => len,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io::Error::other(format!("tap read failed: {e}"))),
                },
            };
            self.rx_pending = Some(len);
            let frame = self.rx_buf.get_mut(..len).unwrap_or_default();
            let before = queue.next_used();
            let outcome = deliver(
                &self.mem,
                queue,
                frame,
                self.mergeable,
                &mut self.rx_scratch,
                &self.stats,
            );
            used |= queue.next_used() != before;
            match outcome {
                Delivery::Delivered => NetStats::bump(&self.stats.rx_frames),
                Delivery::Dropped => NetStats::bump(&self.stats.rx_dropped_frames),
                Delivery::NoBuffers => {
                    // Ask for a kick when buffers come; retry if some
                    // arrived meanwhile.
                    match queue.enable_notification(&self.mem) {
                        Ok(true) => continue,
                        _ => break,
                    }
                }
            }
            self.rx_pending = None;
        }
        Ok(used)
    }
}
