//! Waiting for the pod's apps. hull's container process (the pid its
//! `--pid-file` names) is daemonized by `hull create`; as the apps'
//! subreaper this process gets it as a child once `hull create` returns,
//! and `waitpid` gives the app's exit status, as it gives it to
//! containerd's shim. rkt's stage1 ends the pod when an app fails (its
//! reaper runs `systemctl exit STATUS`): so here, unless the pod is
//! mutable, the first non-zero status stops the other apps and is the
//! pod's.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::hull::{Hull, HullError};
use crate::pod::PodDir;
use crate::Stage1Error;

/// An app's container and its host process.
#[derive(Debug, Clone)]
pub struct Member {
    pub app: String,
    pub id: String,
    pub pid: i32,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// SIGINT, SIGTERM and SIGHUP stop the pod's apps instead of ending this
/// process (whose end would leave the VM running). No `SA_RESTART`: they
/// interrupt `waitpid`.
pub fn catch_stop_signals() -> Result<(), Stage1Error> {
    let action = SigAction::new(
        SigHandler::Handler(on_stop),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe { sigaction(sig, &action) }.map_err(|e| Stage1Error::Sys("sigaction", e))?;
    }
    Ok(())
}

pub fn become_subreaper() -> Result<(), Stage1Error> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches no
    // memory of this process.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(Stage1Error::Sys(
            "prctl(PR_SET_CHILD_SUBREAPER)",
            Errno::last(),
        ));
    }
    Ok(())
}

/// The container's pid: `hull state`'s, else the pid file's.
pub fn container_pid(hull: &Hull, id: &str, pid_file: &Path) -> Result<i32, Stage1Error> {
    if let Some(pid) = hull
        .state(id)
        .ok()
        .and_then(|s| s["pid"].as_i64())
        .and_then(|p| i32::try_from(p).ok())
        .filter(|p| *p > 0)
    {
        return Ok(pid);
    }
    std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| Stage1Error::NoPid(id.to_string()))
}

/// The network namespace of a container's host process (hull's stand-in
/// is in the namespaces its spec listed).
pub fn netns_of(pid: i32) -> std::path::PathBuf {
    format!("/proc/{pid}/ns/net").into()
}

/// An interactive app on a terminal: `hull run` in the foreground (it puts
/// the terminal in raw mode and relays it); its pid is the one to wait for.
pub fn run_foreground(
    hull: &Hull,
    id: &str,
    bundle: &Path,
    pid_file: &Path,
) -> Result<i32, Stage1Error> {
    let b = bundle.to_string_lossy();
    let p = pid_file.to_string_lossy();
    let child = hull
        .command(&["run", "--bundle", &b, "--pid-file", &p, id])
        .spawn()
        .map_err(|source| HullError::Spawn {
            bin: hull.bin.clone(),
            command: "run".into(),
            source,
        })?;
    Ok(child.id() as i32)
}

/// A wait status as a shell reports it.
fn code(ws: WaitStatus) -> Option<(i32, i32)> {
    match ws {
        WaitStatus::Exited(pid, c) => Some((pid.as_raw(), c)),
        WaitStatus::Signaled(pid, sig, _) => Some((pid.as_raw(), 128 + sig as i32)),
        _ => None,
    }
}

fn stop_all(hull: &Hull, members: &[Member], signal: &str) {
    for m in members {
        let _ = hull.kill(&m.id, signal);
    }
}

/// Waits until the apps are done (a mutable pod: until its sandbox is),
/// writing each app's status; the pod's exit status.
pub fn wait_pod(
    pod: &PodDir,
    hull: &Hull,
    mut remaining: Vec<Member>,
    sandbox_pid: i32,
    mutable: bool,
) -> i32 {
    let mut failure: Option<i32> = None;
    let mut stopping = false;
    let mut sandbox_gone = false;
    while mutable && !sandbox_gone || !mutable && !remaining.is_empty() {
        if STOP.load(Ordering::SeqCst) && !stopping {
            stopping = true;
            stop_all(hull, &remaining, "TERM");
            if mutable {
                let _ = hull.kill(&pod.sandbox_id(), "KILL");
            }
        }
        let (pid, status) = match waitpid(Pid::from_raw(-1), None) {
            Err(Errno::EINTR) => continue,
            Err(e) => {
                eprintln!(
                    "stage1: waiting for the apps: {e}; {} app(s) not seen to exit",
                    remaining.len()
                );
                break;
            }
            Ok(ws) => match code(ws) {
                Some(c) => c,
                None => continue,
            },
        };
        if pid == sandbox_pid {
            sandbox_gone = true;
            // The apps end with the VM; make sure of it.
            stop_all(hull, &remaining, "KILL");
            continue;
        }
        let Some(i) = remaining.iter().position(|m| m.pid == pid) else {
            continue;
        };
        let m = remaining.remove(i);
        if let Err(e) = pod.write_status(&m.app, status) {
            eprintln!("stage1: app {}: {e}", m.app);
        }
        if status != 0 && failure.is_none() && !mutable {
            failure = Some(status);
            stop_all(hull, &remaining, "TERM");
        }
    }
    failure.unwrap_or(0)
}

/// Waits for `pid` (a child: this process is its subreaper); its status,
/// `None` when it cannot be waited for.
pub fn wait_one(pid: i32) -> Option<i32> {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Err(Errno::EINTR) => continue,
            Err(_) => return None,
            Ok(ws) => match code(ws) {
                Some((p, status)) if p == pid => return Some(status),
                _ => continue,
            },
        }
    }
}

/// Reaps whatever exited of the pod's processes (after their deletion).
pub fn reap_leftovers() {
    while let Ok(ws) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if ws == WaitStatus::StillAlive {
            break;
        }
    }
}
