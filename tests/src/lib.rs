//! Harness for hull's end-to-end tests: finds the built artifacts, runs
//! `hull-vmm` under a watchdog, and records every microVM that really booted
//! (its agent printed the ready line) so the runner can report the count.

use std::io::{Read, Write};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use agent_protocol::{parse_ready_line, Ready};

pub mod bundle;
pub mod run;

/// Wall-clock limit for one VM run, generous for the 10-30x slower test host.
pub const VM_DEADLINE: Duration = Duration::from_secs(240);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub(crate) fn artifact(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(default))
}

/// `hull-vmm`, the guest kernel and the initramfs under test (overridable with
/// HULL_VMM, HULL_KERNEL, HULL_INITRD).
pub fn vmm_bin() -> PathBuf {
    artifact("HULL_VMM", "target/release/hull-vmm")
}
pub fn kernel() -> PathBuf {
    artifact("HULL_KERNEL", "build/kernel/vmlinux")
}
pub fn initrd() -> PathBuf {
    artifact("HULL_INITRD", "build/initramfs.cpio")
}

/// A scratch directory under target/, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A directory under target/e2e/scratch.
    pub fn new(name: &str) -> Self {
        Self::under(&workspace_root().join("target/e2e/scratch"), name)
    }

    /// A directory under the system's temporary directory: for Unix sockets,
    /// which the test host's 9p shares (where target/ lives) cannot hold.
    pub fn tmp(name: &str) -> Self {
        Self::under(&std::env::temp_dir(), name)
    }

    fn under(base: &Path, name: &str) -> Self {
        let dir = base.join(format!("hull-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Self(dir)
    }

    pub fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one `hull-vmm` run did.
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub timed_out: bool,
}

/// The last `n` characters of `s`.
fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    &s[start..]
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status {:?} after {:?}{}\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
            self.status,
            self.elapsed,
            if self.timed_out {
                " (killed at the deadline)"
            } else {
                ""
            },
            tail(&self.stdout, 2000),
            tail(&self.stderr, 2000)
        )
    }
}

impl Run {
    /// The agent's ready report, if it printed one.
    pub fn ready(&self) -> Option<Ready> {
        self.stdout.lines().find_map(parse_ready_line)
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Appends one line to the boot log named by HULL_E2E_BOOT_LOG.
pub fn record_boot(what: &str) {
    if let Some(path) = std::env::var_os("HULL_E2E_BOOT_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{what}");
        }
    }
}

fn read_all(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Kills a child process if it is still running at a deadline. It holds a
/// pidfd opened right after the spawn, so it can never signal a recycled pid.
pub struct Watchdog {
    done: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<bool>,
}

impl Watchdog {
    pub fn arm(child: &Child, deadline: Duration) -> Self {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
        let (done, rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let expired = rx.recv_timeout(deadline) == Err(mpsc::RecvTimeoutError::Timeout);
            if pidfd >= 0 {
                if expired {
                    // SAFETY: `pidfd` is our open pidfd; a null siginfo is allowed.
                    unsafe {
                        libc::syscall(
                            libc::SYS_pidfd_send_signal,
                            pidfd as libc::c_int,
                            libc::SIGKILL,
                            std::ptr::null::<libc::siginfo_t>(),
                            0,
                        )
                    };
                }
                // SAFETY: closes the fd this thread owns.
                unsafe { libc::close(pidfd as libc::c_int) };
            }
            expired
        });
        Self { done, thread }
    }

    /// Stops the watchdog; true when it had already fired.
    pub fn disarm(self) -> bool {
        let _ = self.done.send(());
        self.thread.join().unwrap_or(false)
    }
}

/// Runs `hull-vmm ARGS` to its end, killing it at `VM_DEADLINE`. A run whose
/// agent printed its ready line is recorded as a booted microVM.
pub fn hull_vmm(args: &[&str]) -> Run {
    let owned: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    Live::spawn(&owned).finish()
}

/// A `hull-vmm` that is still running: read its console up to the agent's
/// ready line, talk to it, then collect how it ended.
pub struct Live {
    child: Child,
    watchdog: Watchdog,
    console: std::io::BufReader<std::process::ChildStdout>,
    seen: String,
    stderr: std::thread::JoinHandle<String>,
    started: Instant,
    args: Vec<String>,
    recorded: bool,
}

impl Live {
    pub fn spawn(args: &[String]) -> Self {
        let mut child = Command::new(vmm_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", vmm_bin().display()));
        let watchdog = Watchdog::arm(&child, VM_DEADLINE);
        let stderr = read_all(child.stderr.take().expect("stderr piped"));
        let console = std::io::BufReader::new(child.stdout.take().expect("stdout piped"));
        Self {
            child,
            watchdog,
            console,
            seen: String::new(),
            stderr,
            started: Instant::now(),
            args: args.to_vec(),
            recorded: false,
        }
    }

    /// Reads the console until the agent's ready line (None if it ended first).
    pub fn wait_ready(&mut self) -> Option<Ready> {
        let mut line = String::new();
        loop {
            line.clear();
            match std::io::BufRead::read_line(&mut self.console, &mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {
                    self.seen.push_str(&line);
                    if let Some(ready) = parse_ready_line(&line) {
                        self.record(&ready);
                        return Some(ready);
                    }
                }
            }
        }
    }

    fn record(&mut self, ready: &Ready) {
        if !self.recorded {
            record_boot(&format!("{:?} {ready:?}", self.args));
            self.recorded = true;
        }
    }

    /// Waits for the VMM to end and returns the whole run; a run whose agent
    /// printed its ready line is recorded as a booted microVM.
    pub fn finish(self) -> Run {
        let Live {
            mut child,
            watchdog,
            mut console,
            mut seen,
            stderr,
            started,
            args,
            recorded,
        } = self;
        let _ = console.read_to_string(&mut seen);
        let status = child.wait().expect("wait for hull-vmm");
        let timed_out = watchdog.disarm();
        let run = Run {
            status,
            stdout: seen,
            stderr: stderr.join().unwrap_or_default(),
            elapsed: started.elapsed(),
            timed_out,
        };
        if let Some(ready) = run.ready().filter(|_| !recorded) {
            record_boot(&format!("{args:?} {ready:?}"));
        }
        run
    }
}

/// The standard arguments to boot the built kernel and initramfs.
pub fn boot_args(cpus: u32, mem_mib: u64) -> Vec<String> {
    vec![
        "--kernel".into(),
        kernel().display().to_string(),
        "--initrd".into(),
        initrd().display().to_string(),
        "--cpus".into(),
        cpus.to_string(),
        "--mem".into(),
        mem_mib.to_string(),
        "--timeout".into(),
        (VM_DEADLINE.as_secs() - 10).to_string(),
    ]
}

/// Runs with owned arguments.
pub fn hull_vmm_owned(args: &[String]) -> Run {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    hull_vmm(&refs)
}
