//! The `hull-vmm` child process: spawned with the share and the vsock
//! socket, its output read by [`Console`] threads, its exit watched by a
//! waiter thread. Readiness and exit arrive as [`VmEvent`]s on one channel.

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use agent_protocol::{Ready, SHARE_TAG};

use super::artifacts::Artifacts;
use super::console::{Console, Source};

/// Reported if hull-vmm's status could not be collected: exit code 1.
fn unknown_failure() -> ExitStatus {
    ExitStatus::from_raw(1 << 8)
}

/// Guest CID of the sandbox VM.
pub const GUEST_CID: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    #[error("cannot start {path}: {source}")]
    Spawn { path: PathBuf, source: io::Error },
    #[error("cannot start a VMM watcher thread: {0}")]
    Thread(io::Error),
    #[error("the VM exited before its agent was ready ({status})\n{tail}")]
    ExitedBeforeReady { status: ExitStatus, tail: String },
    #[error("the VM's agent was not ready after {secs} s\n{tail}")]
    BootTimeout { secs: u64, tail: String },
}

/// What the VMM's watcher threads report.
#[derive(Debug)]
pub enum VmEvent {
    /// The agent printed its ready line (`None`: not parsable).
    Ready(Option<Ready>),
    /// hull-vmm exited (and was reaped).
    Exited(ExitStatus),
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
}

impl VmmConfig {
    /// hull-vmm's arguments.
    pub fn args(&self) -> Vec<String> {
        let p = |p: &Path| p.display().to_string();
        vec![
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
        ]
    }
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
    console: Console,
    threads: Vec<JoinHandle<()>>,
    exit: Option<ExitStatus>,
}

impl Vmm {
    /// Starts hull-vmm. It runs in its own process group (a terminal's ^C
    /// goes to hull, which forwards it to the container) and is SIGKILLed if
    /// the thread that spawned it dies: call this from a thread that lives as
    /// long as the sandbox (the main thread).
    pub fn spawn(config: &VmmConfig, console: Console) -> Result<Self, VmmError> {
        let vmm = &config.artifacts.vmm;
        let mut cmd = Command::new(vmm);
        cmd.args(config.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: getpid is async-signal-safe.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the closure runs between fork and exec and only calls the
        // async-signal-safe prctl and getppid.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(io::Error::other("hull exited while starting hull-vmm"));
                }
                Ok(())
            })
        };
        let mut child = cmd.spawn().map_err(|source| VmmError::Spawn {
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
        let mut vmm = Self {
            pid: pid as i32,
            killer: killer.clone(),
            events,
            console: console.clone(),
            threads: Vec::new(),
            exit: None,
        };
        // From here on, dropping `vmm` on an error kills and reaps the child.
        let (c, ready) = (console.clone(), tx.clone());
        vmm.spawn_thread("hull-console", move || {
            if let Some(out) = stdout {
                c.read_lines(Source::Guest, out, |r| {
                    let _ = ready.send(VmEvent::Ready(r));
                });
            }
        })?;
        vmm.spawn_thread("hull-vmm-stderr", move || {
            if let Some(err) = stderr {
                console.read_lines(Source::Vmm, err, |_| {});
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

    /// The last console lines, for error messages.
    pub fn console_tail(&self) -> String {
        self.console.tail()
    }

    /// Waits for the agent's ready line. If the VMM exits first, or nothing
    /// comes within `timeout`, the error carries the console's tail (the
    /// VMM is killed on timeout).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<Option<Ready>, VmmError> {
        match self.events.recv_timeout(timeout) {
            Ok(VmEvent::Ready(ready)) => Ok(ready),
            Ok(VmEvent::Exited(status)) => {
                self.exit = Some(status);
                self.join_threads();
                Err(VmmError::ExitedBeforeReady {
                    status,
                    tail: self.console.tail(),
                })
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                self.killer.kill();
                let _ = self.wait_exit();
                Err(VmmError::BootTimeout {
                    secs: timeout.as_secs(),
                    tail: self.console.tail(),
                })
            }
        }
    }

    /// Blocks until hull-vmm has exited; all its output is recorded when
    /// this returns.
    pub fn wait_exit(&mut self) -> ExitStatus {
        while self.exit.is_none() {
            match self.events.recv() {
                Ok(VmEvent::Exited(status)) => self.exit = Some(status),
                Ok(VmEvent::Ready(_)) => {}
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
        let deadline = std::time::Instant::now() + timeout;
        while self.exit.is_none() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.events.recv_timeout(left) {
                Ok(VmEvent::Exited(status)) => self.exit = Some(status),
                Ok(VmEvent::Ready(_)) => {}
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
                Ok(VmEvent::Exited(status)) => self.exit = Some(status),
                Ok(VmEvent::Ready(_)) => {}
                Err(_) => break,
            }
        }
        self.exit
    }

    fn join_threads(&mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
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
