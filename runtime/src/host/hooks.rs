//! Running OCI hooks ([`crate::bundle::spec::Hook`]) on the host.
//!
//! Each hook runs with `path` as the program, `args` as its whole argv
//! (`args[0]` becomes `argv[0]`; no args means argv is `[path]`), `env` as its
//! whole environment (nothing inherited; entries without `=` are skipped),
//! the container's state JSON on stdin, and stdout/stderr captured (the last
//! [`OUTPUT_TAIL_BYTES`] of each) for the error message. The hook leads a
//! process group of its own, so a timeout kills everything it started that
//! stayed in the group.
//!
//! Hooks of one kind run in order; the first failure stops the list
//! ([`run_hooks`]). For `poststart` and `poststop` the spec says a failure
//! is only logged: [`run_hooks_warn`] runs every hook and returns the
//! failures for the caller to log.

use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

pub use crate::bundle::spec::{Hook, HookKind};

/// How much of a hook's stdout and of its stderr is kept for messages.
pub const OUTPUT_TAIL_BYTES: usize = 4096;
/// How long output is still collected after the hook exited (a process it
/// left behind may hold the pipes open).
const OUTPUT_GRACE: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook {path}: cannot run it: {source}")]
    Spawn {
        kind: HookKind,
        path: String,
        source: io::Error,
    },
    #[error("{kind} hook {path}: waiting for it failed: {source}")]
    Wait {
        kind: HookKind,
        path: String,
        source: io::Error,
    },
    #[error("{kind} hook {path} timed out after {secs}s (killed){output}")]
    TimedOut {
        kind: HookKind,
        path: String,
        secs: u64,
        output: Output,
    },
    #[error("{kind} hook {path} failed: {}{output}", describe(*status))]
    Failed {
        kind: HookKind,
        path: String,
        status: ExitStatus,
        output: Output,
    },
}

/// The captured tails of a hook's stdout and stderr. Displays as
/// `; stderr: …; stdout: …` (parts that are empty left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, text) in [("stderr", &self.stderr), ("stdout", &self.stdout)] {
            let text = text.trim();
            if !text.is_empty() {
                write!(f, "; {name}: {text}")?;
            }
        }
        Ok(())
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => status.to_string(),
    }
}

/// Runs `hooks` (all of one `kind`) in order with `state` on stdin; stops
/// at the first failure.
pub fn run_hooks(kind: HookKind, hooks: &[Hook], state: &[u8]) -> Result<(), HookError> {
    hooks.iter().try_for_each(|h| run_hook(kind, h, state))
}

/// Runs every hook even when some fail (for `poststart`/`poststop`, whose
/// failures the spec says are logged and otherwise ignored); returns the
/// failures, in order.
pub fn run_hooks_warn(kind: HookKind, hooks: &[Hook], state: &[u8]) -> Vec<HookError> {
    hooks
        .iter()
        .filter_map(|h| run_hook(kind, h, state).err())
        .collect()
}

/// Runs one hook.
pub fn run_hook(kind: HookKind, hook: &Hook, state: &[u8]) -> Result<(), HookError> {
    let path = || hook.path.clone();
    let mut cmd = Command::new(&hook.path);
    if let Some((argv0, rest)) = hook.args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for (key, value) in hook.env.iter().filter_map(|e| e.split_once('=')) {
        cmd.env(key, value);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|source| HookError::Spawn {
        kind,
        path: path(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        let state = state.to_vec();
        // Detached: a hook that never reads its stdin must not hold us up;
        // the write ends with EPIPE once the hook is gone.
        let _ = thread::Builder::new()
            .name("hook-stdin".into())
            .spawn(move || {
                let _ = stdin.write_all(&state);
            });
    }
    let capture = Capture::start(&mut child);
    let timeout = hook.timeout_secs.map(Duration::from_secs);
    let waited = wait(&mut child, timeout);
    let output = capture.finish();
    match waited {
        Err(source) => Err(HookError::Wait {
            kind,
            path: path(),
            source,
        }),
        Ok(None) => Err(HookError::TimedOut {
            kind,
            path: path(),
            secs: hook.timeout_secs.unwrap_or_default(),
            output,
        }),
        Ok(Some(status)) if status.success() => Ok(()),
        Ok(Some(status)) => Err(HookError::Failed {
            kind,
            path: path(),
            status,
            output,
        }),
    }
}

/// Waits for the child; with a timeout, kills its process group when the
/// time is up and returns `None` (after reaping it).
fn wait(child: &mut Child, timeout: Option<Duration>) -> io::Result<Option<ExitStatus>> {
    let Some(timeout) = timeout else {
        return child.wait().map(Some);
    };
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    // The helper only learns that the child exited (WNOWAIT leaves it a
    // zombie), so the pid and its process group stay ours to kill until
    // `child.wait()` below reaps it.
    thread::Builder::new()
        .name("hook-wait".into())
        .spawn(move || {
            let _ = tx.send(crate::process::wait_exited_no_reap(pid));
        })?;
    let timed_out = match rx.recv_timeout(timeout) {
        Ok(result) => {
            result?;
            false
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // `pid` leads the group (process_group(0)) and is not reaped
            // yet, so the group id cannot have been reused.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            true
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            return Err(io::Error::other("hook wait thread ended"))
        }
    };
    let status = child.wait()?;
    Ok((!timed_out).then_some(status))
}

/// The last [`OUTPUT_TAIL_BYTES`] of a stream, filled by a reader thread.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.bytes.extend_from_slice(data);
        if self.bytes.len() > OUTPUT_TAIL_BYTES {
            let excess = self.bytes.len() - OUTPUT_TAIL_BYTES;
            self.bytes.drain(..excess);
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Reader threads for a child's stdout and stderr.
struct Capture {
    stdout: Arc<Mutex<Tail>>,
    stderr: Arc<Mutex<Tail>>,
    done: mpsc::Receiver<()>,
    readers: usize,
}

impl Capture {
    fn start(child: &mut Child) -> Self {
        let (tx, done) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(Tail::default()));
        let stderr = Arc::new(Mutex::new(Tail::default()));
        let mut readers = 0;
        if let Some(s) = child.stdout.take() {
            readers += usize::from(spawn_reader(s, stdout.clone(), tx.clone()));
        }
        if let Some(s) = child.stderr.take() {
            readers += usize::from(spawn_reader(s, stderr.clone(), tx));
        }
        Self {
            stdout,
            stderr,
            done,
            readers,
        }
    }

    /// Waits (at most [`OUTPUT_GRACE`]) for both streams to end and returns
    /// what was captured.
    fn finish(self) -> Output {
        let deadline = Instant::now() + OUTPUT_GRACE;
        for _ in 0..self.readers {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.done.recv_timeout(left).is_err() {
                break;
            }
        }
        Output {
            stdout: lock(&self.stdout).text(),
            stderr: lock(&self.stderr).text(),
        }
    }
}

/// Reads `stream` into `tail` until its end, then says so on `done`.
/// Returns whether the thread started.
fn spawn_reader(
    mut stream: impl Read + Send + 'static,
    tail: Arc<Mutex<Tail>>,
    done: mpsc::Sender<()>,
) -> bool {
    thread::Builder::new()
        .name("hook-output".into())
        .spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => lock(&tail).push(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = done.send(());
        })
        .is_ok()
}

fn lock(tail: &Mutex<Tail>) -> std::sync::MutexGuard<'_, Tail> {
    tail.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests;
