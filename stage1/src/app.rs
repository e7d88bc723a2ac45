//! `app add|start|stop|rm` of a mutable pod (rkt `stage0/app_add.go`,
//! `app_start.go`, `app_stop.go`, `app_rm.go`): stage0 runs them in the pod
//! directory with `--debug=BOOL [--uuid=UUID] --app=NAME` and an
//! environment of `RKT_STAGE1_ENTERCMD`, `RKT_STAGE1_ENTERPID` and `PATH`
//! only; stage0 has already put the app's image under
//! `stage1/rootfs/opt/stage2/<app>` and the app in the pod manifest.
//!
//! `add` creates the member container from a watcher process of its own
//! (`hull-stage1 app-watch`, in a process group of its own), the subreaper
//! of the container's process: it writes the app's exit status when it
//! ends, as `run` does for the pod's first apps.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::Stdio;

use crate::appc::{ImageManifest, PodManifest};
use crate::args::{Parsed, APP};
use crate::bundle::{self, app::RunSettings};
use crate::entry::{hull_of, stop_gracefully};
use crate::hull::Hull;
use crate::pod::{PodDir, PodState};
use crate::{reap, Stage1Error};

struct Ctx {
    pod: PodDir,
    state: PodState,
    hull: Hull,
    app: String,
}

fn context(args: &[String]) -> Result<(Ctx, Parsed), Stage1Error> {
    let p = APP.parse(args)?;
    let app = p
        .value("app")
        .filter(|a| crate::pod::valid_app_name(a))
        .ok_or_else(|| APP.usage("--app=NAME is required"))?
        .to_string();
    let pod = PodDir::current(p.value("uuid"))?;
    let state = pod
        .load_state()?
        .ok_or_else(|| APP.usage("the pod was not started by hull's stage1 (no stage1.json)"))?;
    let hull = hull_of(Some(&state), p.flag("debug"));
    Ok((
        Ctx {
            pod,
            state,
            hull,
            app,
        },
        p,
    ))
}

/// `app add`: the member container, created (not started).
pub fn add(args: &[String]) -> Result<i32, Stage1Error> {
    let (c, _) = context(args)?;
    if !c.state.mutable {
        return Err(APP.usage("the pod is not mutable").into());
    }
    let manifest = PodManifest::load(&c.pod.manifest())?;
    let ra = manifest
        .app(&c.app)
        .ok_or_else(|| APP.usage(format!("app {} is not in the pod manifest", c.app)))?;
    let image = ImageManifest::load(&c.pod.app_manifest(&c.app))?;
    let sandbox_pid: i32 = std::fs::read_to_string(c.pod.pid_file())
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| APP.usage("the pod has no pid file: is it running?"))?;
    let netns = match &c.state.netns {
        Some(ns) => ns.clone(),
        None => reap::netns_of(sandbox_pid),
    };
    let settings = RunSettings {
        netns: Some(&netns),
        sandbox_pid: Some(sandbox_pid),
        caps_restricted: c.state.caps_restricted,
        seccomp: c.state.seccomp,
        paths_restricted: c.state.paths_restricted,
        terminal: false,
        dns: &c.state.dns,
    };
    let (config, _) = bundle::app_config(&c.pod, &manifest, ra, &image, &settings)?;
    bundle::write_bundle(&c.pod.app_bundle(&c.app), &config)?;
    let exe = std::env::current_exe().map_err(|source| Stage1Error::Io {
        path: "/proc/self/exe".into(),
        source,
    })?;
    let mut watcher = std::process::Command::new(exe)
        .arg("app-watch")
        .arg(format!("--app={}", c.app))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(run_output(&c.state, 2))
        .process_group(0)
        .spawn()
        .map_err(|source| Stage1Error::Io {
            path: "hull-stage1 app-watch".into(),
            source,
        })?;
    let mut line = String::new();
    if let Some(out) = watcher.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    match line.trim() {
        "ok" => Ok(0),
        other => Err(Stage1Error::Watcher(format!("app {}: {other}", c.app))),
    }
}

/// The `run` process's stdout (1) or stderr (2), where an added app's
/// output goes; /dev/null when it is gone.
fn run_output(state: &PodState, fd: i32) -> Stdio {
    std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{}/fd/{fd}", state.run_pid))
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null())
}

/// The watcher (`app-watch --app=NAME`): creates the container, says `ok`
/// (or the error) on stdout, waits for the app, writes its status.
pub fn watch(args: &[String]) -> Result<i32, Stage1Error> {
    let (c, _) = context(args)?;
    let id = c.pod.app_id(&c.app);
    let dir = c.pod.app_bundle(&c.app);
    let pid_file = dir.join("pid");
    let created = reap::become_subreaper().and_then(|()| {
        let _ = std::fs::remove_file(&pid_file);
        let stdout = run_output(&c.state, 1);
        c.hull
            .create_with(&id, &dir, &pid_file, Stdio::null(), stdout)?;
        reap::container_pid(&c.hull, &id, &pid_file)
    });
    let mut out = std::io::stdout();
    let pid = match created {
        Ok(pid) => {
            let _ = writeln!(out, "ok").and_then(|()| out.flush());
            pid
        }
        Err(e) => {
            let _ = writeln!(out, "{e}").and_then(|()| out.flush());
            return Err(e);
        }
    };
    // Nothing more goes to stdout: its reader is gone.
    let status = reap::wait_one(pid);
    if let Some(code) = status {
        c.pod.write_status(&c.app, code)?;
    }
    Ok(0)
}

pub fn start(args: &[String]) -> Result<i32, Stage1Error> {
    let (c, _) = context(args)?;
    c.hull.start(&c.pod.app_id(&c.app))?;
    Ok(0)
}

pub fn stop(args: &[String]) -> Result<i32, Stage1Error> {
    let (c, _) = context(args)?;
    let id = c.pod.app_id(&c.app);
    if c.hull.state(&id).is_err() {
        return Err(APP.usage(format!("app {} is not running", c.app)).into());
    }
    stop_gracefully(&c.hull, &[id]);
    Ok(0)
}

pub fn rm(args: &[String]) -> Result<i32, Stage1Error> {
    let (c, _) = context(args)?;
    c.hull.delete_force(&c.pod.app_id(&c.app))?;
    let _ = std::fs::remove_dir_all(c.pod.app_bundle(&c.app));
    Ok(0)
}
