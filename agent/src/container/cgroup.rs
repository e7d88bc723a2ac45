//! One cgroup v2 directory per container under /sys/fs/cgroup/hull: stats,
//! killing every process, removal. Without cgroup2 these degrade to no-ops
//! (empty path).

use std::os::fd::AsFd;
use std::path::Path;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use agent_protocol::container::Stats;

const ROOT: &str = "/sys/fs/cgroup";
const PARENT: &str = "/sys/fs/cgroup/hull";

fn enable_controllers(dir: &str) {
    // Best effort: a controller the kernel lacks is simply not enabled.
    for c in ["+cpu", "+memory", "+pids"] {
        let _ = std::fs::write(format!("{dir}/cgroup.subtree_control"), c);
    }
}

/// Creates the container's cgroup; `""` when cgroup2 is not there.
pub fn create(id: &str) -> String {
    if !Path::new(ROOT).join("cgroup.controllers").exists() {
        return String::new();
    }
    if !Path::new(PARENT).exists() {
        enable_controllers(ROOT);
        if std::fs::create_dir(PARENT).is_err() {
            return String::new();
        }
        enable_controllers(PARENT);
    }
    let dir = format!("{PARENT}/{id}");
    match std::fs::create_dir(&dir) {
        Ok(()) => dir,
        // Left by an earlier container of this id whose processes were
        // still going away when it was removed: reuse it.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => dir,
        Err(e) => {
            crate::console::log(&format!("hull-agent: no cgroup for {id}: {e}"));
            String::new()
        }
    }
}

fn read_u64(path: String) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub fn stats(dir: &str) -> Stats {
    if dir.is_empty() {
        return Stats::default();
    }
    let cpu_usage_ns = std::fs::read_to_string(format!("{dir}/cpu.stat"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .map_or(0, |us| us.saturating_mul(1000));
    Stats {
        cpu_usage_ns,
        memory_usage_bytes: read_u64(format!("{dir}/memory.current")).unwrap_or(0),
        // "max" does not parse: no limit of its own.
        memory_limit_bytes: read_u64(format!("{dir}/memory.max")).unwrap_or(0),
        pids: read_u64(format!("{dir}/pids.current")).unwrap_or(0),
    }
}

/// The pids in the cgroup.
pub fn pids(dir: &str) -> Vec<i32> {
    if dir.is_empty() {
        return Vec::new();
    }
    std::fs::read_to_string(format!("{dir}/cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Sends `signal` to every process in the cgroup.
pub fn signal_all(dir: &str, signal: i32) {
    if signal == libc::SIGKILL && std::fs::write(format!("{dir}/cgroup.kill"), "1").is_ok() {
        return;
    }
    for pid in pids(dir) {
        // SAFETY: kill has no memory effects. Raw libc: any signal number
        // may come (nix's kill takes only its Signal enum, without the
        // real-time signals).
        unsafe { libc::kill(pid, signal) };
    }
}

/// How long the kernel may take to freeze or thaw a container.
pub const FREEZE_TIMEOUT_MS: i32 = 10_000;

/// Whether `cgroup.events` says the cgroup is frozen.
fn frozen(dir: &str) -> Option<bool> {
    let events = std::fs::read_to_string(format!("{dir}/cgroup.events")).ok()?;
    events
        .lines()
        .find_map(|l| l.strip_prefix("frozen "))
        .map(|v| v.trim() == "1")
}

/// Freezes or thaws every process of the cgroup (`cgroup.freeze`), and
/// waits for `cgroup.events` to say so (the kernel notifies a change of
/// that file with POLLPRI), at most [`FREEZE_TIMEOUT_MS`].
pub fn freeze(dir: &str, on: bool) -> Result<(), String> {
    if dir.is_empty() {
        return Err("the guest has no cgroup2 to freeze".into());
    }
    let events = std::fs::File::open(format!("{dir}/cgroup.events"))
        .map_err(|e| format!("open {dir}/cgroup.events: {e}"))?;
    std::fs::write(format!("{dir}/cgroup.freeze"), if on { "1" } else { "0" })
        .map_err(|e| format!("write {dir}/cgroup.freeze: {e}"))?;
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_millis(FREEZE_TIMEOUT_MS as u64);
    loop {
        if frozen(dir) == Some(on) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            let what = if on { "freeze" } else { "thaw" };
            return Err(format!(
                "the kernel did not {what} the container within {FREEZE_TIMEOUT_MS} ms"
            ));
        }
        let mut fds = [PollFd::new(events.as_fd(), PollFlags::POLLPRI)];
        let _ = poll(
            &mut fds,
            PollTimeout::from(left.as_millis().min(1000) as u16),
        );
    }
}

/// Removes the (empty) cgroup; best effort.
pub fn remove(dir: &str) {
    if !dir.is_empty() {
        let _ = std::fs::remove_dir(dir);
    }
}
