//! The device thread: owns the queues and the muxer, sleeps in epoll on
//! the queue kick, the stop event, the listener and connection sockets.

use std::os::fd::AsRawFd;
use std::sync::Arc;

use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::epoll::{ControlOperation, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use super::packet::{RxBuffer, TxPacket};
use super::unix::{Muxer, Token};
use super::{VsockStats, RX_QUEUE, TX_QUEUE};
use crate::devices::virtio::Interrupt;

/// Everything the device thread owns.
pub struct Worker {
    pub mem: GuestMemoryMmap,
    pub interrupt: Arc<Interrupt>,
    /// rx, tx, event.
    pub queues: Vec<Queue>,
    pub muxer: Muxer,
    pub kick: Arc<EventFd>,
    pub stop: Arc<EventFd>,
    pub stats: Arc<VsockStats>,
    payload: Vec<u8>,
}

impl Worker {
    pub fn new(
        mem: GuestMemoryMmap,
        interrupt: Arc<Interrupt>,
        queues: Vec<Queue>,
        muxer: Muxer,
        kick: Arc<EventFd>,
        stop: Arc<EventFd>,
        stats: Arc<VsockStats>,
    ) -> std::io::Result<Self> {
        for (fd, token) in [
            (kick.as_raw_fd(), Token::Kick),
            (stop.as_raw_fd(), Token::Stop),
        ] {
            let ev = EpollEvent::new(EventSet::IN, token.to_u64());
            muxer.epoll().ctl(ControlOperation::Add, fd, ev)?;
        }
        Ok(Self {
            mem,
            interrupt,
            queues,
            muxer,
            kick,
            stop,
            stats,
            payload: Vec::new(),
        })
    }

    /// Runs until the stop event fires; an epoll failure is returned (and
    /// reported by the device thread).
    pub fn run(mut self) -> std::io::Result<Muxer> {
        let mut events = vec![EpollEvent::default(); 64];
        self.process();
        while !self.poll_once(&mut events, -1)? {}
        Ok(self.muxer)
    }

    /// Waits up to `timeout_ms` (-1: forever) for events, handles them and
    /// processes the queues. Returns true when the stop event fired.
    pub fn poll_once(
        &mut self,
        events: &mut [EpollEvent],
        timeout_ms: i32,
    ) -> std::io::Result<bool> {
        let n = match self.muxer.epoll().wait(timeout_ms, events) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Ok(false),
            Err(e) => return Err(e),
        };
        for ev in &events[..n] {
            match Token::from_u64(ev.data()) {
                Some(Token::Stop) => return Ok(true),
                Some(Token::Kick) => {
                    let _ = self.kick.read();
                }
                Some(token) => self.muxer.handle_event(token, ev.event_set()),
                None => {}
            }
        }
        self.process();
        Ok(false)
    }

    /// Drains the TX queue, fills the RX queue, and interrupts the guest if
    /// it asked for it. Public for tests, which drive the worker inline.
    pub fn process(&mut self) {
        let tx_used = self.process_tx();
        let rx_used = self.process_rx();
        let mut notify = false;
        for (idx, used) in [(TX_QUEUE, tx_used), (RX_QUEUE, rx_used)] {
            if used {
                notify |= crate::devices::virtio::wants_interrupt(&mut self.queues, idx, &self.mem);
            }
        }
        if notify {
            let _ = self.interrupt.signal_used_queue();
        }
    }

    fn process_tx(&mut self) -> bool {
        let Some(queue) = self.queues.get_mut(TX_QUEUE).filter(|q| q.ready()) else {
            return false;
        };
        let mut used = false;
        while let Some(chain) = queue.pop_descriptor_chain(&self.mem) {
            let head = chain.head_index();
            match TxPacket::parse(&self.mem, chain) {
                Ok(pkt) => self.muxer.handle_tx(pkt),
                Err(_) => VsockStats::bump(&self.stats.bad_tx_packets),
            }
            if queue.add_used(&self.mem, head, 0).is_err() {
                break;
            }
            used = true;
        }
        used
    }

    fn process_rx(&mut self) -> bool {
        let Some(queue) = self.queues.get_mut(RX_QUEUE).filter(|q| q.ready()) else {
            return false;
        };
        let mut used = false;
        while self.muxer.has_rx() {
            let Some(chain) = queue.pop_descriptor_chain(&self.mem) else {
                break;
            };
            let head = chain.head_index();
            let len = match RxBuffer::parse(&self.mem, chain) {
                Ok(buf) => match self.muxer.next_rx(buf.max_payload(), &mut self.payload) {
                    Some(hdr) => buf
                        .write(&self.mem, &hdr, &self.payload)
                        .unwrap_or_else(|_| {
                            VsockStats::bump(&self.stats.bad_rx_buffers);
                            0
                        }),
                    None => {
                        queue.go_to_previous_position();
                        break;
                    }
                },
                Err(_) => {
                    VsockStats::bump(&self.stats.bad_rx_buffers);
                    0
                }
            };
            if queue.add_used(&self.mem, head, len).is_err() {
                break;
            }
            used = true;
        }
        used
    }
}
