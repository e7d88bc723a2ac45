//! The pod directory as rkt lays it out (rkt `common/common.go`): stage0
//! chdirs into `/var/lib/rkt/pods/run/<uuid>` before it runs an
//! entrypoint; the pod manifest is `pod`, the stage1 image is `stage1/`
//! (its rootfs `stage1/rootfs`), each app is under
//! `stage1/rootfs/opt/stage2/<app>/{manifest,rootfs}`, the apps' exit
//! statuses go to `stage1/rootfs/rkt/status/<app>`, the pod's pid to `pid`.
//! hull's own files (bundles, empty volumes, `stage1.json`: how the pod
//! was started, for the later entrypoints) live under `stage1/rootfs/hull`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error("cannot read the current directory: {0}")]
    Cwd(std::io::Error),
    #[error("pod uuid {0:?} is not a pod uuid")]
    BadUuid(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A pod directory and its uuid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodDir {
    pub dir: PathBuf,
    pub uuid: String,
}

/// A uuid as rkt prints it (hex and dashes), so that it is safe in
/// container ids and file names.
pub fn valid_uuid(u: &str) -> bool {
    !u.is_empty() && u.len() <= 64 && u.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// A name of an app as appc allows it (`types.ACName`: lower case
/// letters, digits, dashes).
pub fn valid_app_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 200
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl PodDir {
    /// The pod in the current directory, as stage0 calls every entrypoint;
    /// the uuid given, else the directory's name.
    pub fn current(uuid: Option<&str>) -> Result<Self, PodError> {
        let dir = std::env::current_dir().map_err(PodError::Cwd)?;
        let uuid = match uuid {
            Some(u) => u.to_string(),
            None => dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        Self::new(dir, &uuid)
    }

    pub fn new(dir: PathBuf, uuid: &str) -> Result<Self, PodError> {
        if !valid_uuid(uuid) {
            return Err(PodError::BadUuid(uuid.into()));
        }
        Ok(Self {
            dir,
            uuid: uuid.to_ascii_lowercase(),
        })
    }

    pub fn manifest(&self) -> PathBuf {
        self.dir.join("pod")
    }
    pub fn stage1_rootfs(&self) -> PathBuf {
        self.dir.join("stage1/rootfs")
    }
    pub fn app_dir(&self, app: &str) -> PathBuf {
        self.stage1_rootfs().join("opt/stage2").join(app)
    }
    pub fn app_rootfs(&self, app: &str) -> PathBuf {
        self.app_dir(app).join("rootfs")
    }
    pub fn app_manifest(&self, app: &str) -> PathBuf {
        self.app_dir(app).join("manifest")
    }
    pub fn status_dir(&self) -> PathBuf {
        self.stage1_rootfs().join("rkt/status")
    }
    pub fn pause_rootfs(&self) -> PathBuf {
        self.stage1_rootfs().join("pause/rootfs")
    }
    pub fn hull_dir(&self) -> PathBuf {
        self.stage1_rootfs().join("hull")
    }
    pub fn sandbox_bundle(&self) -> PathBuf {
        self.hull_dir().join("sandbox")
    }
    pub fn app_bundle(&self, app: &str) -> PathBuf {
        self.hull_dir().join("apps").join(app)
    }
    pub fn volume_dir(&self, volume: &str) -> PathBuf {
        self.hull_dir().join("volumes").join(volume)
    }
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("pid")
    }
    pub fn sandbox_id(&self) -> String {
        format!("rkt-{}", self.uuid)
    }
    pub fn app_id(&self, app: &str) -> String {
        format!("rkt-{}-{app}", self.uuid)
    }
    /// The pod's default hostname: `rkt-` and the uuid's first part.
    pub fn default_hostname(&self) -> String {
        format!("rkt-{}", self.uuid.split('-').next().unwrap_or(&self.uuid))
    }

    /// Writes `text` to `path` through a temporary file and a rename.
    pub fn write_atomic(path: &Path, text: &str) -> Result<(), PodError> {
        let err = |source| PodError::Write {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    /// Records an app's exit status, as `rkt status` reads it (a decimal).
    pub fn write_status(&self, app: &str, code: i32) -> Result<(), PodError> {
        Self::write_atomic(&self.status_dir().join(app), &code.to_string())
    }

    /// `rkt/supervisor-status -> ready` (interface version 5): the pod's
    /// supervisor (here: `run`, its sandbox and first apps up) is ready.
    pub fn mark_ready(&self) -> Result<(), PodError> {
        let path = self.stage1_rootfs().join("rkt/supervisor-status");
        let tmp = path.with_extension("tmp");
        let err = |source| PodError::Write {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink("ready", &tmp).map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)
    }

    fn state_path(&self) -> PathBuf {
        self.hull_dir().join("stage1.json")
    }
    pub fn save_state(&self, state: &PodState) -> Result<(), PodError> {
        let text = serde_json::to_string_pretty(state).unwrap_or_default();
        Self::write_atomic(&self.state_path(), &text)
    }
    /// The recorded state; `None` when `run` never got to write it.
    pub fn load_state(&self) -> Result<Option<PodState>, PodError> {
        let path = self.state_path();
        match std::fs::read(&path) {
            Ok(b) => Ok(serde_json::from_slice(&b).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(PodError::Read { path, source }),
        }
    }
}

/// How `run` started the pod: what the later entrypoints (which get no
/// environment of rkt's but `PATH`) need.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PodState {
    pub hull_bin: PathBuf,
    pub hull_root: PathBuf,
    pub hostname: String,
    pub caps_restricted: bool,
    pub seccomp: bool,
    pub paths_restricted: bool,
    pub dns: crate::bundle::Dns,
    pub mutable: bool,
    /// The named network namespace and the CNI result (default network).
    pub netns: Option<PathBuf>,
    pub cni_result: Option<Value>,
    /// The `run` process (its stdout and stderr take added apps' output).
    pub run_pid: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_ids_and_status() {
        let d = tempfile::tempdir().unwrap();
        let p = PodDir::new(d.path().into(), "0AB1c2d3-4e5f-6789-abcd-ef0123456789").unwrap();
        assert_eq!(p.sandbox_id(), "rkt-0ab1c2d3-4e5f-6789-abcd-ef0123456789");
        assert_eq!(
            p.app_id("web"),
            "rkt-0ab1c2d3-4e5f-6789-abcd-ef0123456789-web"
        );
        assert_eq!(p.default_hostname(), "rkt-0ab1c2d3");
        assert_eq!(
            p.app_rootfs("web"),
            d.path().join("stage1/rootfs/opt/stage2/web/rootfs")
        );
        p.write_status("web", 42).unwrap();
        let s = std::fs::read_to_string(d.path().join("stage1/rootfs/rkt/status/web")).unwrap();
        assert_eq!(s, "42");
        p.mark_ready().unwrap();
        p.mark_ready().unwrap();
        let ready =
            std::fs::read_link(d.path().join("stage1/rootfs/rkt/supervisor-status")).unwrap();
        assert_eq!(ready, PathBuf::from("ready"));
        assert!(p.load_state().unwrap().is_none());
        let st = PodState {
            hull_root: "/run/hull-rkt".into(),
            ..Default::default()
        };
        p.save_state(&st).unwrap();
        assert_eq!(p.load_state().unwrap(), Some(st));
        assert!(PodDir::new(d.path().into(), "../x").is_err());
        assert!(valid_app_name("web-1") && !valid_app_name("Web/..") && !valid_app_name(""));
    }
}
