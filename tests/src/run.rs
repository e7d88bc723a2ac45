//! Running `hull run` under a watchdog, with the workload's stdin fed from a
//! thread, and the checks every test wants afterwards (no state directory, no
//! VMM process, no mount left behind).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use std::sync::{Arc, Condvar, Mutex};

use crate::{artifact, record_boot, Watchdog};

/// Output collected so far, and whether it ended.
#[derive(Default)]
struct Shared {
    data: Mutex<(Vec<u8>, bool)>,
    grew: Condvar,
}

fn collect<R: Read + Send + 'static>(mut r: R) -> (Arc<Shared>, std::thread::JoinHandle<()>) {
    let shared = Arc::new(Shared::default());
    let s = shared.clone();
    let thread = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = r.read(&mut buf).unwrap_or(0);
            let mut d = s.data.lock().unwrap_or_else(|p| p.into_inner());
            if n == 0 {
                d.1 = true;
                s.grew.notify_all();
                return;
            }
            d.0.extend_from_slice(&buf[..n]);
            s.grew.notify_all();
        }
    });
    (shared, thread)
}

/// Wall-clock limit for one `hull run` in the (slow) test host.
pub const RUN_DEADLINE: Duration = Duration::from_secs(300);

/// The `hull` binary under test (HULL_BIN).
pub fn hull_bin() -> PathBuf {
    artifact("HULL_BIN", "target/release/hull")
}

/// Where `hull run` keeps sandbox state in the tests.
pub fn state_root() -> PathBuf {
    std::env::temp_dir().join("hull-e2e-state")
}

/// How one `hull run` ended.
#[derive(Debug)]
pub struct RunOutput {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    /// stderr without hull's `--timings` line.
    pub stderr: String,
    /// The `--timings` JSON line, when hull printed one.
    pub timings: Option<String>,
    pub timed_out: bool,
}

impl RunOutput {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// A started `hull run`.
pub struct HullRun {
    pub child: Child,
    watchdog: Watchdog,
    stdin: Option<std::thread::JoinHandle<()>>,
    stdout: Arc<Shared>,
    stdout_thread: std::thread::JoinHandle<()>,
    stderr: std::thread::JoinHandle<Vec<u8>>,
    pub id: String,
}

fn drain<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

impl HullRun {
    /// Starts `hull --root STATE run --timings --bundle BUNDLE ID`; `stdin`
    /// is written then closed (None: /dev/null).
    pub fn start(bundle: &Path, id: &str, stdin: Option<Vec<u8>>) -> Self {
        Self::start_with(bundle, id, stdin, &[])
    }

    /// As [`HullRun::start`], with extra global options (e.g. `--config F`).
    pub fn start_with(bundle: &Path, id: &str, stdin: Option<Vec<u8>>, global: &[&str]) -> Self {
        let mut child = Command::new(hull_bin())
            .arg("--root")
            .arg(state_root())
            .args(global)
            .args(["run", "--timings", "--bundle"])
            .arg(bundle)
            .arg(id)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", hull_bin().display()));
        let watchdog = Watchdog::arm(&child, RUN_DEADLINE);
        let feeder = match (stdin, child.stdin.take()) {
            (Some(data), Some(mut pipe)) => Some(std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            })),
            _ => None,
        };
        let (stdout, stdout_thread) = collect(child.stdout.take().expect("stdout piped"));
        let stderr = drain(child.stderr.take().expect("stderr piped"));
        Self {
            child,
            watchdog,
            stdin: feeder,
            stdout,
            stdout_thread,
            stderr,
            id: id.to_string(),
        }
    }

    /// Blocks until stdout has produced `text` (or ended: then panics).
    pub fn wait_for_stdout(&self, text: &str) {
        if !self.stdout_shows(text) {
            let d = self.stdout.data.lock().unwrap_or_else(|p| p.into_inner());
            panic!(
                "stdout ended without {text:?}: {:?}",
                String::from_utf8_lossy(&d.0)
            );
        }
    }

    /// Blocks until stdout has produced `text` (true) or ended (false; then
    /// [`HullRun::finish`] tells why, stderr included).
    pub fn stdout_shows(&self, text: &str) -> bool {
        let mut d = self.stdout.data.lock().unwrap_or_else(|p| p.into_inner());
        while !String::from_utf8_lossy(&d.0).contains(text) {
            if d.1 {
                return false;
            }
            d = self.stdout.grew.wait(d).unwrap_or_else(|p| p.into_inner());
        }
        true
    }

    /// Waits for the end; records a boot when hull's timings show one.
    pub fn finish(mut self) -> RunOutput {
        if let Some(t) = self.stdin.take() {
            let _ = t.join();
        }
        let _ = self.stdout_thread.join();
        let stdout =
            std::mem::take(&mut self.stdout.data.lock().unwrap_or_else(|p| p.into_inner()).0);
        let stderr_all =
            String::from_utf8_lossy(&self.stderr.join().unwrap_or_default()).into_owned();
        let status = self.child.wait().expect("wait for hull");
        let timed_out = self.watchdog.disarm();
        let (timings, rest): (Vec<&str>, Vec<&str>) = stderr_all
            .lines()
            .partition(|l| l.starts_with('{') && l.contains("\"total_ms\""));
        let timings = timings.first().map(|s| s.to_string());
        if let Some(t) = timings.as_ref().filter(|t| t.contains("\"vm_boot_ms\"")) {
            record_boot(&format!("hull run {}: {t}", self.id));
        }
        let mut stderr = rest.join("\n");
        if !stderr.is_empty() {
            stderr.push('\n');
        }
        RunOutput {
            status,
            stdout,
            stderr,
            timings,
            timed_out,
        }
    }
}

/// Runs to the end.
pub fn hull_run(bundle: &Path, id: &str, stdin: Option<Vec<u8>>) -> RunOutput {
    HullRun::start(bundle, id, stdin).finish()
}

/// Asserts that nothing of sandbox `id` is left: state directory, mounts,
/// VMM processes.
pub fn assert_cleaned_up(id: &str) {
    let state = state_root().join(id);
    assert!(!state.exists(), "state dir {} left behind", state.display());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert!(
        !mounts.lines().any(|l| l.contains(&format!("/{id}/"))),
        "mounts of {id} left behind"
    );
    let procs = std::fs::read_dir("/proc").expect("/proc");
    for p in procs.flatten() {
        let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(
            !(text.contains("hull-vmm") && text.contains(&format!("/{id}/"))),
            "a VMM of {id} is still running: {text}"
        );
    }
}
