//! The device thread: owns the queues and the tap, sleeps in epoll on the
//! queue kick, the stop event and the tap fd.
//!
//! Tap interest is recomputed after every pass: `EPOLLIN` only while the
//! receive queue is live and no received frame is waiting for guest
//! buffers, `EPOLLOUT` only while a transmit is blocked on `EAGAIN`. An
//! error or hang-up on the tap (its interface deleted) ends the thread with
//! an error, reported as a device failure.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use super::rx::RxScratch;
use super::tap::NetBackend;
use super::{NetStats, F_MRG_RXBUF, MAX_FRAME_BYTES, RX_QUEUE, TX_QUEUE};
use crate::devices::virtio::Interrupt;

const TOKEN_KICK: u64 = 1;
const TOKEN_STOP: u64 = 2;
const TOKEN_TAP: u64 = 3;

/// Everything the device thread owns.
pub struct Worker {
    pub mem: GuestMemoryMmap,
    pub interrupt: Arc<Interrupt>,
    /// rx, then tx.
    pub queues: Vec<Queue>,
    pub backend: Box<dyn NetBackend>,
    pub kick: Arc<EventFd>,
    pub stop: Arc<EventFd>,
    pub stats: Arc<NetStats>,
    epoll: Epoll,
    /// The driver accepted `VIRTIO_NET_F_MRG_RXBUF`.
    pub(super) mergeable: bool,
    /// The frame being transmitted (reused).
    pub(super) tx_buf: Vec<u8>,
    /// A transmit hit `EAGAIN`; its chain is back in the ring.
    pub(super) tx_blocked: bool,
    /// The frame read from the tap (reused).
    pub(super) rx_buf: Vec<u8>,
    /// Length of the frame in `rx_buf` still waiting for guest buffers.
    pub(super) rx_pending: Option<usize>,
    pub(super) rx_scratch: RxScratch,
    /// The tap events currently registered.
    tap_interest: EventSet,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        mem: GuestMemoryMmap,
        interrupt: Arc<Interrupt>,
        queues: Vec<Queue>,
        backend: Box<dyn NetBackend>,
        features: u64,
        kick: Arc<EventFd>,
        stop: Arc<EventFd>,
        stats: Arc<NetStats>,
    ) -> io::Result<Self> {
        let epoll = Epoll::new()?;
        let tap_interest = EventSet::IN;
        for (fd, token, events) in [
            (kick.as_raw_fd(), TOKEN_KICK, EventSet::IN),
            (stop.as_raw_fd(), TOKEN_STOP, EventSet::IN),
            (backend.as_raw_fd(), TOKEN_TAP, tap_interest),
        ] {
            epoll.ctl(ControlOperation::Add, fd, EpollEvent::new(events, token))?;
        }
        Ok(Self {
            mem,
            interrupt,
            queues,
            backend,
            kick,
            stop,
            stats,
            epoll,
            mergeable: features & F_MRG_RXBUF != 0,
            tx_buf: Vec::with_capacity(MAX_FRAME_BYTES),
            tx_blocked: false,
            rx_buf: vec![0; MAX_FRAME_BYTES],
            rx_pending: None,
            rx_scratch: RxScratch::default(),
            tap_interest,
        })
    }

    /// Runs until the stop event fires and hands the backend back; an epoll
    /// or tap read failure is returned (and reported by the device thread).
    pub fn run(mut self) -> io::Result<Box<dyn NetBackend>> {
        let mut events = [EpollEvent::default(); 8];
        self.process()?;
        while !self.poll_once(&mut events, -1)? {}
        Ok(self.backend)
    }

    /// Waits up to `timeout_ms` (-1: forever) for events and moves frames.
    /// Returns true when the stop event fired.
    pub fn poll_once(&mut self, events: &mut [EpollEvent], timeout_ms: i32) -> io::Result<bool> {
        let n = match self.epoll.wait(timeout_ms, events) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(false),
            Err(e) => return Err(e),
        };
        for ev in &events[..n] {
            match ev.data() {
                TOKEN_STOP => return Ok(true),
                TOKEN_KICK => {
                    let _ = self.kick.read();
                }
                TOKEN_TAP => {
                    let set = ev.event_set();
                    if set.intersects(EventSet::ERROR | EventSet::HANG_UP) {
                        // A tap whose interface is gone: reported, never spun on.
                        return Err(io::Error::other(format!(
                            "tap fd reports {set:?} (interface deleted?)"
                        )));
                    }
                    if set.contains(EventSet::OUT) {
                        self.tx_blocked = false;
                    }
                }
                _ => {}
            }
        }
        self.process()?;
        Ok(false)
    }

    /// Drains the TX queue into the tap, moves tap frames into the RX queue,
    /// interrupts the guest if it asked for it and updates the tap interest.
    /// Public for tests, which drive the worker inline.
    pub fn process(&mut self) -> io::Result<()> {
        let tx_used = self.process_tx();
        let rx_used = self.process_rx()?;
        let mut notify = false;
        for (idx, used) in [(TX_QUEUE, tx_used), (RX_QUEUE, rx_used)] {
            if used {
                notify |= crate::devices::virtio::wants_interrupt(&mut self.queues, idx, &self.mem);
            }
        }
        if notify {
            let _ = self.interrupt.signal_used_queue();
        }
        self.update_interest()
    }

    /// Whether a received frame waits for guest buffers.
    pub fn rx_pending(&self) -> bool {
        self.rx_pending.is_some()
    }

    /// Whether a transmit waits for the tap to become writable.
    pub fn tx_blocked(&self) -> bool {
        self.tx_blocked
    }

    /// The tap events the thread currently waits for.
    pub fn tap_interest(&self) -> EventSet {
        self.tap_interest
    }

    fn update_interest(&mut self) -> io::Result<()> {
        let mut want = EventSet::empty();
        let rx_ready = self.queues.get(RX_QUEUE).is_some_and(|q| q.ready());
        if self.rx_pending.is_none() && rx_ready {
            want |= EventSet::IN;
        }
        if self.tx_blocked {
            want |= EventSet::OUT;
        }
        if want != self.tap_interest {
            let ev = EpollEvent::new(want, TOKEN_TAP);
            self.epoll
                .ctl(ControlOperation::Modify, self.backend.as_raw_fd(), ev)?;
            self.tap_interest = want;
        }
        Ok(())
    }
}
