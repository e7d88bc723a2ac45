//! `enter`, `stop` and `gc`: stage0 runs each in the pod directory
//! (rkt `stage0/enter.go`, `stop.go`, `gc.go`).

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use crate::args::{ENTER, GC, STOP};
use crate::hull::Hull;
use crate::net;
use crate::pod::{PodDir, PodState};
use crate::Stage1Error;

/// How long `stop` (without `--force`) and `app stop` give an app after
/// SIGTERM before SIGKILL.
pub const STOP_GRACE_MS: u64 = 10_000;
/// How often they look whether it stopped.
const STOP_POLL_MS: u64 = 100;

/// hull as `run` recorded it, else from the environment.
pub fn hull_of(state: Option<&PodState>, debug: bool) -> Hull {
    match state {
        Some(s) if !s.hull_bin.as_os_str().is_empty() => Hull {
            bin: s.hull_bin.clone(),
            root: s.hull_root.clone(),
            debug,
        },
        _ => Hull::from_env(debug),
    }
}

/// A status as the shell gives it (128 + signal).
pub fn shell_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

fn one_uuid<'a>(
    spec: &crate::args::Spec,
    positional: &'a [String],
) -> Result<&'a str, Stage1Error> {
    match positional {
        [u] => Ok(u),
        _ => Err(spec
            .usage("expected exactly one argument, the pod's uuid")
            .into()),
    }
}

/// `enter --pid=PID --appname=NAME -- CMD [ARG…]`: `hull exec` in the app's
/// container; CMD's status.
pub fn enter(args: &[String]) -> Result<i32, Stage1Error> {
    let p = ENTER.parse(args)?;
    let app = p
        .value("appname")
        .filter(|a| crate::pod::valid_app_name(a))
        .ok_or_else(|| ENTER.usage("--appname=NAME is required"))?;
    if p.positional.is_empty() {
        return Err(ENTER.usage("no command to run after --").into());
    }
    let pod = PodDir::current(None)?;
    let hull = hull_of(pod.load_state()?.as_ref(), false);
    let tty = nix::unistd::isatty(std::io::stdin()).unwrap_or(false);
    Ok(shell_code(hull.exec(
        &pod.app_id(app),
        tty,
        &p.positional,
    )?))
}

/// Whether container `id` is gone or stopped.
fn stopped(hull: &Hull, id: &str) -> bool {
    match hull.state(id) {
        Ok(s) => s["status"] == "stopped",
        Err(_) => true,
    }
}

/// SIGTERM, then SIGKILL after [`STOP_GRACE_MS`] for what still runs.
pub fn stop_gracefully(hull: &Hull, ids: &[String]) {
    for id in ids {
        let _ = hull.kill(id, "TERM");
    }
    let deadline = Instant::now() + Duration::from_millis(STOP_GRACE_MS);
    while Instant::now() < deadline && !ids.iter().all(|id| stopped(hull, id)) {
        std::thread::sleep(Duration::from_millis(STOP_POLL_MS));
    }
    for id in ids.iter().filter(|id| !stopped(hull, id)) {
        let _ = hull.kill(id, "KILL");
    }
}

/// `stop [--force] UUID`: the apps get SIGTERM (then SIGKILL), then the
/// sandbox ends; `--force`: SIGKILL and deletion at once.
pub fn stop(args: &[String]) -> Result<i32, Stage1Error> {
    let p = STOP.parse(args)?;
    let pod = PodDir::current(Some(one_uuid(&STOP, &p.positional)?))?;
    let hull = hull_of(pod.load_state()?.as_ref(), p.flag("debug"));
    let sandbox = pod.sandbox_id();
    let ids = hull.ids_of(&sandbox)?;
    let apps: Vec<String> = ids.iter().filter(|id| **id != sandbox).cloned().collect();
    if p.flag("force") {
        for id in apps.iter().chain(std::iter::once(&sandbox)) {
            let _ = hull.kill(id, "KILL");
            let _ = hull.delete_force(id);
        }
        return Ok(0);
    }
    stop_gracefully(&hull, &apps);
    if ids.contains(&sandbox) {
        // The pause process is PID 1 of its namespace: SIGTERM would not end it.
        let _ = hull.kill(&sandbox, "KILL");
    }
    Ok(0)
}

/// `gc [--debug] [--local-config DIR] UUID`: removes what the pod left:
/// its hull containers, its network, hull's files in the pod. Idempotent.
pub fn gc(args: &[String]) -> Result<i32, Stage1Error> {
    let p = GC.parse(args)?;
    let pod = PodDir::current(Some(one_uuid(&GC, &p.positional)?))?;
    let state = pod.load_state()?;
    let hull = hull_of(state.as_ref(), p.flag("debug"));
    let sandbox = pod.sandbox_id();
    let mut ids = hull.ids_of(&sandbox).unwrap_or_default();
    ids.sort_by_key(|id| *id == sandbox);
    let mut failed = None;
    for id in &ids {
        if let Err(e) = hull.delete_force(id) {
            failed.get_or_insert(Stage1Error::from(e));
        }
    }
    let result = state.as_ref().and_then(|s| s.cni_result.as_ref());
    if let Err(e) = net::detach(&pod.uuid, result) {
        failed.get_or_insert(e.into());
    }
    match std::fs::remove_dir_all(pod.hull_dir()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            failed.get_or_insert(Stage1Error::Io {
                path: pod.hull_dir(),
                source,
            });
        }
    }
    failed.map_or(Ok(0), Err)
}
