//! One cgroup v2 directory per container under /sys/fs/cgroup/hull: stats,
//! killing every process, removal. Without cgroup2 these degrade to no-ops
//! (empty path).

use std::path::Path;

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
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(pid, signal) };
    }
}

/// Removes the (empty) cgroup; best effort.
pub fn remove(dir: &str) {
    if !dir.is_empty() {
        let _ = std::fs::remove_dir(dir);
    }
}
