//! The `hull-vmm` child process: spawned with the share, the vsock socket
//! and a control channel (`--control-fd`, a `SOCK_SEQPACKET` socket pair),
//! its output read by [`Console`] threads (a log only), its exit watched by
//! a waiter thread. Its typed events (agent ready, the VM's end), protocol
//! breaches and its exit arrive as [`VmEvent`]s on one channel; requests go
//! through [`VmmControl`].

mod control;

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use agent_protocol::network::MacAddr;
use agent_protocol::SHARE_TAG;
use vmm_control::{Event, SeqPacket};

pub use control::{ControlError, VmmControl};

use super::artifacts::Artifacts;
use super::console::{Console, Source};

/// Reported if hull-vmm's status could not be collected: exit code 1.
fn unknown_failure() -> ExitStatus {
    ExitStatus::from_raw(1 << 8)
}

/// Guest CID of the sandbox VM.
pub const GUEST_CID: u32 = 3;

/// The fd number hull-vmm finds its end of the control channel on.
pub const CONTROL_FD: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    #[error("cannot start {path}: {source}")]
    Spawn { path: PathBuf, source: io::Error },
    #[error("cannot start a VMM watcher thread: {0}")]
    Thread(io::Error),
    #[error("cannot make the VMM's control channel: {0}")]
    ControlSocket(io::Error),
    #[error("cannot pass a NIC's tap to hull-vmm: {0}")]
    NicFd(io::Error),
    #[error("the VM exited before its agent was ready ({status})\n{tail}")]
    ExitedBeforeReady { status: ExitStatus, tail: String },
    #[error("the VM's agent was not ready after {secs} s\n{tail}")]
    BootTimeout { secs: u64, tail: String },
    #[error("hull-vmm broke the control protocol ({reason}); it was stopped\n{tail}")]
    ControlBroken { reason: String, tail: String },
}

/// What the VMM's control reader and watcher threads report.
#[derive(Debug)]
pub enum VmEvent {
    /// A typed event from hull-vmm, which happened at `ns` (CLOCK_MONOTONIC).
    Vm { ns: u64, event: Event },
    /// hull-vmm sent something the protocol does not allow; nothing more
    /// is read from it.
    ControlBroken(String),
    /// hull-vmm exited (and was reaped).
    Exited(ExitStatus),
}

/// When the VM came up (CLOCK_MONOTONIC ns, as hull-vmm reported them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Booted {
    pub first_kvm_run_ns: Option<u64>,
    pub agent_ready_ns: u64,
}

/// How to start the VM.
#[derive(Debug, Clone)]
pub struct VmmConfig {
    pub artifacts: Artifacts,
    pub mem_mib: u32,
    pub cpus: u32,
    /// Shared over virtio-fs under [`SHARE_TAG`].
    pub share_dir: PathBuf,
    pub vsock_socket: PathBuf,
    /// One virtio-net NIC each (tap fds the caller keeps open until spawn).
    pub nics: Vec<Nic>,
}

/// A NIC for hull-vmm: a tap opened with `IFF_VNET_HDR`, and the MAC and
/// MTU the guest's NIC gets (the host interface's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nic {
    pub fd: RawFd,
    pub mac: MacAddr,
    pub mtu: u32,
}

/// The lowest fd number a NIC's tap gets in hull-vmm (above the control
/// channel's [`CONTROL_FD`]).
const FIRST_NIC_FD: RawFd = 10;

impl VmmConfig {
    /// hull-vmm's arguments, the NICs' taps being the fds `nic_fds` (in
    /// the order of [`Self::nics`]).
    pub fn args(&self, nic_fds: &[RawFd]) -> Vec<String> {
        let p = |p: &Path| p.display().to_string();
        let mut args: Vec<String> = vec![
            "--kernel".into(),
            p(&self.artifacts.kernel),
            "--initrd".into(),
            p(&self.artifacts.initrd),
            "--mem".into(),
            self.mem_mib.to_string(),
            "--cpus".into(),
            self.cpus.to_string(),
            "--console".into(),
            "-".into(),
            "--vsock".into(),
            format!("{GUEST_CID}:{}", p(&self.vsock_socket)),
            "--fs".into(),
            format!("{SHARE_TAG}={}", p(&self.share_dir)),
            "--control-fd".into(),
            CONTROL_FD.to_string(),
        ];
        for (nic, fd) in self.nics.iter().zip(nic_fds) {
            args.push("--net".into());
            args.push(format!("fd={fd},mac={},mtu={}", nic.mac, nic.mtu));
        }
        args
    }
}

/// A close-on-exec copy of `fd` numbered `min` or above.
fn dup_at_least(fd: RawFd, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: the caller keeps `fd` open for the duration of this call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let copy = nix::fcntl::fcntl(borrowed, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(min))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

#[derive(Debug)]
struct Slot {
    child: Child,
    status: Option<ExitStatus>,
}

/// Kills the VMM from any thread, race-free against its reaping.
#[derive(Debug, Clone)]
pub struct VmmKiller(Arc<Mutex<Slot>>);

impl VmmKiller {
    /// SIGKILLs hull-vmm unless it has already been reaped.
    pub fn kill(&self) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.status.is_none() {
            let _ = slot.child.kill();
        }
    }
}

/// A running hull-vmm.
#[derive(Debug)]
pub struct Vmm {
    pid: i32,
    killer: VmmKiller,
    events: Receiver<VmEvent>,
    control: VmmControl,
    console: Console,
    threads: Vec<JoinHandle<()>>,
    exit: Option<ExitStatus>,
    first_kvm_run_ns: Option<u64>,
    agent_ready_ns: Option<u64>,
    /// The VM's end event, or why the channel broke.
    end: Option<String>,
    /// Events read after the exit (the control reader may lag the waiter).
    pending: VecDeque<VmEvent>,
}

impl Vmm {
    /// Starts hull-vmm. It runs in its own process group (a terminal's ^C
    /// goes to hull, which forwards it to the container) and is SIGKILLed if
    /// the thread that spawned it dies: call this from a thread that lives as
    /// long as the sandbox (the main thread).
    pub fn spawn(config: &VmmConfig, console: Console) -> Result<Self, VmmError> {
        let vmm = &config.artifacts.vmm;
        let (ours, theirs) = SeqPacket::pair().map_err(VmmError::ControlSocket)?;
        let theirs_fd = theirs.as_fd().as_raw_fd();
        // Each tap is passed as a copy numbered from FIRST_NIC_FD, made
        // inheritable in the child only (clear of CONTROL_FD's dup2).
        let nic_fds = config
            .nics
            .iter()
            .map(|nic| dup_at_least(nic.fd, FIRST_NIC_FD))
            .collect::<io::Result<Vec<OwnedFd>>>()
            .map_err(VmmError::NicFd)?;
        let nic_raw: Vec<RawFd> = nic_fds.iter().map(AsRawFd::as_raw_fd).collect();
        let inherit = nic_raw.clone();
        let mut cmd = Command::new(vmm);
        cmd.args(config.args(&nic_raw))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: getpid is async-signal-safe.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the closure runs between fork and exec and only calls the
        // async-signal-safe prctl, getppid, dup2 and fcntl.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(io::Error::other("hull exited while starting hull-vmm"));
                }
                // hull-vmm's end of the control channel, inherited as
                // CONTROL_FD (dup2 clears close-on-exec; on the same number
                // it does nothing, so clear it by hand).
                if theirs_fd == CONTROL_FD {
                    if libc::fcntl(CONTROL_FD, libc::F_SETFD, 0) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                } else if libc::dup2(theirs_fd, CONTROL_FD) < 0 {
                    return Err(io::Error::last_os_error());
                }
                for &fd in &inherit {
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            })
        };
        let spawned = cmd.spawn();
        drop(theirs);
        drop(nic_fds);
        let mut child = spawned.map_err(|source| VmmError::Spawn {
            path: vmm.clone(),
            source,
        })?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let pid = child.id();
        let killer = VmmKiller(Arc::new(Mutex::new(Slot {
            child,
            status: None,
        })));
        let (tx, events) = mpsc::channel();
        // Until `vmm` exists, an error here kills the child through `killer`.
        let (control, reader) = match control::start(ours, tx.clone(), Some(killer.clone())) {
            Ok(started) => started,
            Err(e) => {
                let mut slot = killer.0.lock().unwrap_or_else(|p| p.into_inner());
                let _ = slot.child.kill();
                let _ = slot.child.wait();
                return Err(VmmError::Thread(e));
            }
        };
        let mut vmm = Self {
            pid: pid as i32,
            killer: killer.clone(),
            events,
            control,
            console: console.clone(),
            threads: vec![reader],
            exit: None,
            first_kvm_run_ns: None,
            agent_ready_ns: None,
            end: None,
            pending: VecDeque::new(),
        };
        // From here on, dropping `vmm` on an error kills and reaps the child.
        let c = console.clone();
        vmm.spawn_thread("hull-console", move || {
            if let Some(out) = stdout {
                c.read_lines(Source::Guest, out);
            }
        })?;
        vmm.spawn_thread("hull-vmm-stderr", move || {
            if let Some(err) = stderr {
                console.read_lines(Source::Vmm, err);
            }
        })?;
        vmm.spawn_thread("hull-vmm-waiter", move || {
            let _ = crate::process::wait_exited_no_reap(pid as libc::pid_t);
            let mut slot = killer.0.lock().unwrap_or_else(|p| p.into_inner());
            if let Ok(status) = slot.child.wait() {
                slot.status = Some(status);
                drop(slot);
                let _ = tx.send(VmEvent::Exited(status));
            }
        })?;
        Ok(vmm)
    }

    fn spawn_thread(
        &mut self,
        name: &str,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<(), VmmError> {
        let t = thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .map_err(VmmError::Thread)?;
        self.threads.push(t);
        Ok(())
    }

    /// hull-vmm's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// A handle that kills the VMM from another thread.
    pub fn killer(&self) -> VmmKiller {
        self.killer.clone()
    }

    /// Requests to the running hull-vmm (pause, resume, shutdown).
    pub fn control(&self) -> VmmControl {
        self.control.clone()
    }

    /// How the VM ended, as hull-vmm reported it, and the last console
    /// lines, for error messages.
    pub fn console_tail(&self) -> String {
        match &self.end {
            Some(end) => format!("hull-vmm reported: {end}\n{}", self.console.tail()),
            None => self.console.tail(),
        }
    }

    /// Records what an event says; returns it unless it is the exit.
    fn note(&mut self, event: VmEvent) -> Option<VmEvent> {
        match &event {
            VmEvent::Vm { ns, event: e } => match e {
                Event::FirstKvmRun => self.first_kvm_run_ns = Some(*ns),
                Event::AgentReady { .. } => self.agent_ready_ns = Some(*ns),
                e if e.is_end() => self.end = Some(e.to_string()),
                _ => {}
            },
            VmEvent::ControlBroken(reason) => {
                self.end = Some(format!("a control protocol breach: {reason}"));
            }
            VmEvent::Exited(status) => {
                self.exit = Some(*status);
                return None;
            }
        }
        Some(event)
    }

    /// The next event from hull-vmm (its typed events in order, then a
    /// breach of the protocol if there is one), waiting up to `timeout`;
    /// `None` at the timeout or once hull-vmm has exited.
    pub fn next_event(&mut self, timeout: Duration) -> Option<VmEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.exit.is_some() {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => match self.note(event) {
                    Some(event) => return Some(event),
                    // Exited: what the readers still hold comes next.
                    None => self.join_threads(),
                },
                Err(_) => return None,
            }
        }
    }

    /// Waits for hull-vmm's agent-ready event (from the guest event port,
    /// never from console text). If the VMM exits first, breaks the
    /// protocol, or nothing comes within `timeout`, the error carries the
    /// VM's end and the console's tail (the VMM is killed unless it exited).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<Booted, VmmError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(left) {
                Some(VmEvent::Vm {
                    ns,
                    event: Event::AgentReady { .. },
                }) => {
                    return Ok(Booted {
                        first_kvm_run_ns: self.first_kvm_run_ns,
                        agent_ready_ns: ns,
                    })
                }
                Some(VmEvent::ControlBroken(reason)) => {
                    // The reader has killed hull-vmm already.
                    self.wait_exit();
                    return Err(VmmError::ControlBroken {
                        reason,
                        tail: self.console.tail(),
                    });
                }
                Some(_) => {}
                None => break,
            }
        }
        if let Some(status) = self.exit {
            self.join_threads();
            return Err(VmmError::ExitedBeforeReady {
                status,
                tail: self.console_tail(),
            });
        }
        self.killer.kill();
        self.wait_exit();
        Err(VmmError::BootTimeout {
            secs: timeout.as_secs(),
            tail: self.console_tail(),
        })
    }

    /// Blocks until hull-vmm has exited; all its output is recorded when
    /// this returns.
    pub fn wait_exit(&mut self) -> ExitStatus {
        while self.exit.is_none() {
            match self.events.recv() {
                Ok(event) => {
                    self.note(event);
                }
                Err(_) => {
                    // The waiter is gone without a report: read the slot.
                    let slot = self.killer.0.lock().unwrap_or_else(|p| p.into_inner());
                    self.exit = Some(slot.status.unwrap_or_else(unknown_failure));
                }
            }
        }
        self.join_threads();
        self.exit.unwrap_or_else(unknown_failure)
    }

    /// Waits up to `timeout` for hull-vmm to exit on its own; `None` if it
    /// is still running then.
    pub fn wait_exit_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while self.exit.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    self.note(event);
                }
                Err(_) => return None,
            }
        }
        Some(self.wait_exit())
    }

    /// Waits up to `timeout` for hull-vmm to exit; kills it if it has not.
    pub fn wait_exit_or_kill(&mut self, timeout: Duration) -> ExitStatus {
        match self.wait_exit_within(timeout) {
            Some(status) => status,
            None => {
                self.killer.kill();
                self.wait_exit()
            }
        }
    }

    /// The exit status if hull-vmm has already exited (does not block).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        while self.exit.is_none() {
            match self.events.try_recv() {
                Ok(event) => {
                    self.note(event);
                }
                Err(_) => break,
            }
        }
        self.exit
    }

    /// Joins the reader threads (they end with hull-vmm's output and its
    /// end of the control channel), then keeps what they sent last for
    /// [`Vmm::next_event`].
    fn join_threads(&mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        while let Ok(event) = self.events.try_recv() {
            if let Some(event) = self.note(event) {
                self.pending.push_back(event);
            }
        }
    }
}

impl Drop for Vmm {
    fn drop(&mut self) {
        if self.exit.is_none() {
            self.killer.kill();
            self.wait_exit();
        }
    }
}

#[cfg(test)]
mod tests;
