//! The device thread: owns the queues and serves FUSE requests, sleeping in
//! epoll on the queue kick and the stop event.

use std::os::fd::AsRawFd;
use std::sync::Arc;

use fuse_backend_rs::api::server::Server;
use fuse_backend_rs::transport::{Reader, VirtioFsWriter, Writer};
use virtio_queue::{DescriptorChain, Queue, QueueT};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use super::{FsStats, ShareFs};
use crate::devices::virtio::Interrupt;

const TOKEN_KICK: u64 = 1;
const TOKEN_STOP: u64 = 2;

/// The FUSE server of one share, shared by the device and its thread.
pub type FsServer = Server<Arc<ShareFs>>;

/// Everything the device thread owns.
pub struct Worker {
    pub mem: GuestMemoryMmap,
    pub interrupt: Arc<Interrupt>,
    /// hiprio, then the request queue.
    pub queues: Vec<Queue>,
    pub server: Arc<FsServer>,
    pub kick: Arc<EventFd>,
    pub stop: Arc<EventFd>,
    pub stats: Arc<FsStats>,
    epoll: Epoll,
}

impl Worker {
    pub fn new(
        mem: GuestMemoryMmap,
        interrupt: Arc<Interrupt>,
        queues: Vec<Queue>,
        server: Arc<FsServer>,
        kick: Arc<EventFd>,
        stop: Arc<EventFd>,
        stats: Arc<FsStats>,
    ) -> std::io::Result<Self> {
        let epoll = Epoll::new()?;
        for (fd, token) in [
            (kick.as_raw_fd(), TOKEN_KICK),
            (stop.as_raw_fd(), TOKEN_STOP),
        ] {
            epoll.ctl(
                ControlOperation::Add,
                fd,
                EpollEvent::new(EventSet::IN, token),
            )?;
        }
        Ok(Self {
            mem,
            interrupt,
            queues,
            server,
            kick,
            stop,
            stats,
            epoll,
        })
    }

    /// Runs until the stop event fires; an epoll failure is returned (and
    /// reported by the device thread).
    pub fn run(mut self) -> std::io::Result<()> {
        private_umask();
        let mut events = [EpollEvent::default(); 4];
        self.process();
        while !self.poll_once(&mut events, -1)? {}
        Ok(())
    }

    /// Waits up to `timeout_ms` (-1: forever) for events and serves the
    /// queues. Returns true when the stop event fired.
    pub fn poll_once(
        &mut self,
        events: &mut [EpollEvent],
        timeout_ms: i32,
    ) -> std::io::Result<bool> {
        let n = match self.epoll.wait(timeout_ms, events) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Ok(false),
            Err(e) => return Err(e),
        };
        for ev in &events[..n] {
            match ev.data() {
                TOKEN_STOP => return Ok(true),
                TOKEN_KICK => {
                    let _ = self.kick.read();
                }
                _ => {}
            }
        }
        self.process();
        Ok(false)
    }

    /// Serves every available request on every ready queue and interrupts
    /// the guest if it asked for it. Public for tests, which drive it inline.
    pub fn process(&mut self) {
        let mut notify = false;
        for idx in 0..self.queues.len() {
            if self.process_queue(idx) {
                notify |= crate::devices::virtio::wants_interrupt(&mut self.queues, idx, &self.mem);
            }
        }
        if notify {
            let _ = self.interrupt.signal_used_queue();
        }
    }

    fn process_queue(&mut self, idx: usize) -> bool {
        let Some(queue) = self.queues.get_mut(idx).filter(|q| q.ready()) else {
            return false;
        };
        let mut used = false;
        while let Some(chain) = queue.pop_descriptor_chain(&self.mem) {
            let head = chain.head_index();
            let len = match serve(&self.server, &self.mem, chain) {
                Some(len) => {
                    FsStats::bump(&self.stats.requests);
                    len
                }
                None => {
                    FsStats::bump(&self.stats.bad_requests);
                    0
                }
            };
            if queue.add_used(&self.mem, head, len).is_err() {
                FsStats::bump(&self.stats.bad_requests);
                break;
            }
            used = true;
        }
        used
    }
}

/// Serves one chain; returns the reply length, or `None` if the chain was
/// malformed or the request could not be answered.
pub fn serve(
    server: &FsServer,
    mem: &GuestMemoryMmap,
    chain: DescriptorChain<&GuestMemoryMmap>,
) -> Option<u32> {
    let reader = Reader::from_descriptor_chain(mem, chain.clone()).ok()?;
    let writer = VirtioFsWriter::new(mem, chain).ok()?;
    let written = server
        .handle_message(reader, Writer::VirtioFs(writer), None, None)
        .ok()?;
    u32::try_from(written).ok()
}

/// Gives this thread its own umask (unshare CLONE_FS) and clears it, so the
/// guest's modes apply exactly without touching the rest of the process. If
/// unsharing fails the process umask stays, which only narrows modes.
fn private_umask() {
    // SAFETY: unshare(CLONE_FS) only detaches this thread's cwd/root/umask.
    if unsafe { libc::unshare(libc::CLONE_FS) } == 0 {
        // SAFETY: umask only changes this thread's (now private) mask.
        unsafe { libc::umask(0) };
    }
}
