//! OCI bundles for the pod: the sandbox ("pause") container that owns the
//! pod's VM, and one member container per app (CRI's annotations put it in
//! the sandbox's VM). See `bundle/app.rs` for an app's process and mounts.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::isolators::{Limits, CPU_PERIOD_US};

pub mod app;
pub use app::{app_config, merged_app};

pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
pub const SANDBOX_MEMORY: &str = "io.kubernetes.cri.sandbox-memory";
pub const SANDBOX_CPU_QUOTA: &str = "io.kubernetes.cri.sandbox-cpu-quota";
pub const SANDBOX_CPU_PERIOD: &str = "io.kubernetes.cri.sandbox-cpu-period";
/// What the pause process runs (busybox in the stage1 image).
pub const PAUSE_ARGS: [&str; 3] = ["/bin/busybox", "sleep", "2147483647"];

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("app {app}: {what}")]
    App { app: String, what: String },
    #[error("app {app}: {source}")]
    Isolator {
        app: String,
        source: crate::isolators::IsolatorError,
    },
    #[error("app {app}: {source}")]
    User {
        app: String,
        source: crate::user::UserError,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `--dns-conf-mode=resolv=X,hosts=Y` (interface version 4).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Dns {
    pub resolv: String,
    pub hosts: String,
}

impl Dns {
    pub fn parse(text: &str) -> Option<Self> {
        let mut dns = Self {
            resolv: "default".into(),
            hosts: "default".into(),
        };
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=')?;
            let ok = match k {
                "resolv" => ["host", "stage0", "none", "default"].contains(&v),
                "hosts" => ["host", "stage0", "default"].contains(&v),
                _ => false,
            };
            if !ok {
                return None;
            }
            if k == "resolv" {
                dns.resolv = v.into();
            } else {
                dns.hosts = v.into();
            }
        }
        Some(dns)
    }

    /// Bind mounts (source, destination) for the files this mode gives the
    /// apps; `stage1_rootfs` holds what stage0 wrote (`etc/rkt-resolv.conf`,
    /// `etc/rkt-hosts`).
    pub fn mounts(&self, stage1_rootfs: &Path) -> Vec<(PathBuf, &'static str)> {
        let mut m = Vec::new();
        match self.resolv.as_str() {
            "host" => m.push(("/etc/resolv.conf".into(), "/etc/resolv.conf")),
            "stage0" => m.push((
                stage1_rootfs.join("etc/rkt-resolv.conf"),
                "/etc/resolv.conf",
            )),
            _ => {}
        }
        match self.hosts.as_str() {
            "host" => m.push(("/etc/hosts".into(), "/etc/hosts")),
            "stage0" => m.push((stage1_rootfs.join("etc/rkt-hosts"), "/etc/hosts")),
            _ => {}
        }
        m
    }
}

/// The mounts every container gets (runc's `spec` defaults).
pub fn base_mounts() -> Vec<Value> {
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ]
}

/// A network namespace entry: the named one, or a new one (loopback only).
pub fn network_ns(netns: Option<&Path>) -> Value {
    match netns {
        Some(p) => json!({"type": "network", "path": p}),
        None => json!({"type": "network"}),
    }
}

/// The sandbox container: the pause process in the stage1 image's
/// `pause/rootfs`, the pod's hostname, its VM sized for the sum of the
/// apps' limits.
pub fn sandbox_config(
    id: &str,
    pause_rootfs: &Path,
    hostname: &str,
    netns: Option<&Path>,
    apps: &[Limits],
) -> Value {
    let mut annotations = json!({CONTAINER_TYPE: "sandbox", SANDBOX_ID: id});
    let memory: u64 = apps.iter().filter_map(|l| l.memory_bytes).sum();
    if memory > 0 {
        annotations[SANDBOX_MEMORY] = json!(memory.to_string());
    }
    let millis: u64 = apps.iter().filter_map(|l| l.cpu_millis).sum();
    if millis > 0 {
        let quota = (millis * CPU_PERIOD_US).div_ceil(1000);
        annotations[SANDBOX_CPU_QUOTA] = json!(quota.to_string());
        annotations[SANDBOX_CPU_PERIOD] = json!(CPU_PERIOD_US.to_string());
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": PAUSE_ARGS,
            "env": ["PATH=/bin"],
            "cwd": "/",
            "noNewPrivileges": true,
        },
        "root": {"path": pause_rootfs, "readonly": true},
        "hostname": hostname,
        "mounts": base_mounts(),
        "annotations": annotations,
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                           {"type": "mount"}, network_ns(netns)],
        },
    })
}

/// Writes `config` as `dir/config.json`.
pub fn write_bundle(dir: &Path, config: &Value) -> Result<(), BundleError> {
    let io = |source| BundleError::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let text = serde_json::to_string_pretty(config).unwrap_or_default();
    std::fs::write(dir.join("config.json"), text).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_is_sized_for_its_apps() {
        let apps = [
            Limits {
                memory_bytes: Some(64 << 20),
                cpu_millis: Some(500),
                ..Default::default()
            },
            Limits {
                memory_bytes: Some(128 << 20),
                cpu_millis: Some(1000),
                ..Default::default()
            },
        ];
        let c = sandbox_config("rkt-u", Path::new("/p/pause/rootfs"), "h", None, &apps);
        let a = &c["annotations"];
        assert_eq!(a[CONTAINER_TYPE], "sandbox");
        assert_eq!(a[SANDBOX_ID], "rkt-u");
        assert_eq!(a[SANDBOX_MEMORY], (192u64 << 20).to_string());
        assert_eq!(a[SANDBOX_CPU_QUOTA], "150000");
        assert_eq!(c["hostname"], "h");
        let spec: oci_spec::runtime::Spec = serde_json::from_value(c.clone()).unwrap();
        assert_eq!(
            spec.root().as_ref().unwrap().path(),
            Path::new("/p/pause/rootfs")
        );
        let none = sandbox_config(
            "rkt-u",
            Path::new("/r"),
            "h",
            Some(Path::new("/run/netns/x")),
            &[],
        );
        assert!(none["annotations"].get(SANDBOX_MEMORY).is_none());
        assert_eq!(none["linux"]["namespaces"][4]["path"], "/run/netns/x");
    }

    #[test]
    fn dns_modes() {
        let d = Dns::parse("resolv=host,hosts=stage0").unwrap();
        let m = d.mounts(Path::new("/s1"));
        assert_eq!(
            m[0],
            (PathBuf::from("/etc/resolv.conf"), "/etc/resolv.conf")
        );
        assert_eq!(m[1], (PathBuf::from("/s1/etc/rkt-hosts"), "/etc/hosts"));
        assert!(Dns::parse("resolv=bogus").is_none());
        assert!(Dns::parse("").unwrap().mounts(Path::new("/")).is_empty());
    }
}
