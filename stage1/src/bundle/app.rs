//! One app's member container: its process from the image manifest's app
//! with the pod manifest's overrides (as stage0's `generateRuntimeApp`
//! merges them), its volumes, its isolators.

use std::path::Path;

use serde_json::{json, Value};

use super::{base_mounts, network_ns, BundleError, Dns, CONTAINER_TYPE, SANDBOX_ID};
use crate::appc::{App, ImageManifest, PodManifest, RuntimeApp, Volume};
use crate::isolators::{self, Limits, CPU_PERIOD_US, DEFAULT_CAPS};
use crate::pod::PodDir;

/// rkt's stage1 sets this `PATH` when the app has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The settings of the run that apply to every app.
#[derive(Debug, Clone)]
pub struct RunSettings<'a> {
    pub netns: Option<&'a Path>,
    /// The sandbox container's host process, once it runs: the members
    /// join its ipc and uts namespaces by path, as containerd's CRI plugin
    /// gives them.
    pub sandbox_pid: Option<i32>,
    pub caps_restricted: bool,
    pub seccomp: bool,
    pub paths_restricted: bool,
    pub terminal: bool,
    pub dns: &'a Dns,
}

/// The image's app with the pod manifest's overrides; environment: the
/// image's, then the pod's.
pub fn merged_app(image: &ImageManifest, ra: &RuntimeApp) -> App {
    let mut app = image.app.clone().unwrap_or_default();
    let Some(o) = &ra.app else { return app };
    if !o.exec.is_empty() {
        app.exec = o.exec.clone();
    }
    for (mine, theirs) in [(&mut app.user, &o.user), (&mut app.group, &o.group)] {
        if !theirs.is_empty() {
            *mine = theirs.clone();
        }
    }
    if !o.working_directory.is_empty() {
        app.working_directory = o.working_directory.clone();
    }
    if !o.supplementary_gids.is_empty() {
        app.supplementary_gids = o.supplementary_gids.clone();
    }
    if !o.isolators.is_empty() {
        app.isolators = o.isolators.clone();
    }
    if !o.mount_points.is_empty() {
        app.mount_points = o.mount_points.clone();
    }
    for nv in &o.environment {
        match app.environment.iter_mut().find(|e| e.name == nv.name) {
            Some(e) => e.value = nv.value.clone(),
            None => app.environment.push(nv.clone()),
        }
    }
    app
}

/// The member container of app `ra` and the limits it asked for.
pub fn app_config(
    pod: &PodDir,
    manifest: &PodManifest,
    ra: &RuntimeApp,
    image: &ImageManifest,
    run: &RunSettings,
) -> Result<(Value, Limits), BundleError> {
    let name = ra.name.as_str();
    let bad = |what: String| BundleError::App {
        app: name.into(),
        what,
    };
    let rootfs = pod.app_rootfs(name);
    if !rootfs.is_dir() {
        return Err(bad(format!("rootfs {} is missing", rootfs.display())));
    }
    let app = merged_app(image, ra);
    if app.exec.is_empty() {
        return Err(bad(
            "no exec in the image manifest or the pod manifest".into()
        ));
    }
    let limits =
        isolators::limits(&app.isolators, run.caps_restricted, run.seccomp).map_err(|source| {
            BundleError::Isolator {
                app: name.into(),
                source,
            }
        })?;
    let (uid, gid) = crate::user::resolve(&rootfs, &app.user, &app.group).map_err(|source| {
        BundleError::User {
            app: name.into(),
            source,
        }
    })?;

    let mut env: Vec<String> = app
        .environment
        .iter()
        .map(|e| format!("{}={}", e.name, e.value))
        .collect();
    if !app.environment.iter().any(|e| e.name == "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env.push(format!("AC_APP_NAME={name}"));
    if run.terminal {
        env.push("TERM=xterm".into());
    }
    let caps: Vec<String> = match (&limits.caps_retained, run.caps_restricted) {
        (_, false) => ALL_CAPS.iter().map(|c| c.to_string()).collect(),
        (Some(keep), true) => keep.clone(),
        (None, true) => DEFAULT_CAPS
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !limits.caps_removed.contains(c))
            .collect(),
    };
    let cwd = match app.working_directory.as_str() {
        "" => "/",
        w => w,
    };
    let mut process = json!({
        "terminal": run.terminal,
        "user": {"uid": uid, "gid": gid, "additionalGids": app.supplementary_gids},
        "args": app.exec,
        "env": env,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": limits.no_new_privileges,
    });
    if let Some(adj) = limits.oom_score_adj {
        process["oomScoreAdj"] = json!(adj);
    }

    let mut mounts = base_mounts();
    mounts.extend(volume_mounts(pod, manifest, ra, &app)?);
    for (src, dst) in run.dns.mounts(&pod.stage1_rootfs()) {
        mounts.push(json!({"destination": dst, "type": "bind", "source": src,
                           "options": ["bind", "ro"]}));
    }

    let mut namespaces = vec![json!({"type": "pid"}), json!({"type": "mount"})];
    if let Some(ns) = run.netns {
        namespaces.push(network_ns(Some(ns)));
    }
    if let Some(pid) = run.sandbox_pid {
        for kind in ["ipc", "uts"] {
            namespaces.push(json!({"type": kind, "path": format!("/proc/{pid}/ns/{kind}")}));
        }
    }
    let mut linux = json!({ "namespaces": namespaces });
    let mut resources = json!({});
    if let Some(bytes) = limits.memory_bytes {
        resources["memory"] = json!({"limit": bytes});
    }
    if let Some(millis) = limits.cpu_millis {
        resources["cpu"] =
            json!({"quota": (millis * CPU_PERIOD_US).div_ceil(1000), "period": CPU_PERIOD_US});
    }
    linux["resources"] = resources;
    if let Some(profile) = &limits.seccomp {
        linux["seccomp"] = profile.clone();
    }
    if run.paths_restricted {
        linux["maskedPaths"] = json!([
            "/proc/kcore",
            "/proc/timer_list",
            "/proc/sched_debug",
            "/sys/firmware"
        ]);
        linux["readonlyPaths"] =
            json!(["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"]);
    }
    let config = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": rootfs, "readonly": ra.read_only_root_fs},
        "mounts": mounts,
        "annotations": {CONTAINER_TYPE: "container", SANDBOX_ID: pod.sandbox_id()},
        "linux": linux,
    });
    Ok((config, limits))
}

/// Bind mounts for the app's mounts (`ra.mounts`) and for its image's
/// mount points no mount covers (the volume of the same name, rkt's
/// implicit volumes: an empty one when the pod has none).
fn volume_mounts(
    pod: &PodDir,
    manifest: &PodManifest,
    ra: &RuntimeApp,
    app: &App,
) -> Result<Vec<Value>, BundleError> {
    let bad = |what: String| BundleError::App {
        app: ra.name.clone(),
        what,
    };
    let mut wanted: Vec<(Volume, String, bool)> = Vec::new();
    for m in &ra.mounts {
        let volume = match &m.app_volume {
            Some(v) => v.clone(),
            None => manifest
                .volumes
                .iter()
                .find(|v| v.name == m.volume)
                .cloned()
                .ok_or_else(|| {
                    bad(format!(
                        "mount {}: no volume {:?} in the pod",
                        m.path, m.volume
                    ))
                })?,
        };
        let ro = app
            .mount_points
            .iter()
            .any(|mp| mp.path == m.path && mp.read_only);
        wanted.push((volume, m.path.clone(), ro));
    }
    for mp in &app.mount_points {
        if wanted.iter().any(|(_, p, _)| *p == mp.path) {
            continue;
        }
        let volume = manifest
            .volumes
            .iter()
            .find(|v| v.name == mp.name)
            .cloned()
            .unwrap_or(Volume {
                name: mp.name.clone(),
                kind: "empty".into(),
                source: String::new(),
                read_only: None,
                recursive: None,
                mode: None,
                uid: None,
                gid: None,
            });
        wanted.push((volume, mp.path.clone(), mp.read_only));
    }
    let mut out = Vec::new();
    for (v, path, mp_ro) in wanted {
        if !path.starts_with('/') {
            return Err(bad(format!("mount path {path:?} is not absolute")));
        }
        let source = match v.kind.as_str() {
            "host" if Path::new(&v.source).is_absolute() => v.source.clone().into(),
            "host" => {
                return Err(bad(format!(
                    "volume {}: source {:?} is not absolute",
                    v.name, v.source
                )))
            }
            "empty" => empty_volume(pod, &v)?,
            other => return Err(bad(format!("volume {}: unknown kind {other:?}", v.name))),
        };
        let bind = if v.recursive == Some(false) {
            "bind"
        } else {
            "rbind"
        };
        let ro = if v.read_only.unwrap_or(false) || mp_ro {
            "ro"
        } else {
            "rw"
        };
        out.push(
            json!({"destination": path, "type": "bind", "source": source, "options": [bind, ro]}),
        );
    }
    Ok(out)
}

/// The directory of an empty volume, made once per pod (mode, uid, gid as
/// the volume says; 0755 root by default).
fn empty_volume(pod: &PodDir, v: &Volume) -> Result<std::path::PathBuf, BundleError> {
    use std::os::unix::fs::PermissionsExt;
    if !crate::pod::valid_app_name(&v.name) {
        return Err(BundleError::App {
            app: v.name.clone(),
            what: "bad volume name".into(),
        });
    }
    let dir = pod.volume_dir(&v.name);
    let io = |source| BundleError::Io {
        path: dir.clone(),
        source,
    };
    if !dir.is_dir() {
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mode = v
            .mode
            .as_deref()
            .and_then(|m| u32::from_str_radix(m, 8).ok())
            .unwrap_or(0o755);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).map_err(io)?;
        if v.uid.is_some() || v.gid.is_some() {
            std::os::unix::fs::chown(&dir, v.uid, v.gid).map_err(io)?;
        }
    }
    Ok(dir)
}

/// Every capability (`--disable-capabilities-restriction`): the agent's
/// list, by number.
const ALL_CAPS: &[&str] = &agent_protocol::container::CAPABILITIES;

#[cfg(test)]
mod tests;
