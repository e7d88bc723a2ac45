//! The appc schema as rkt writes it (appc/spec `schema/pod.go`,
//! `schema/image.go`, `schema/types/app.go`): the pod manifest stage0 puts
//! at `<pod>/pod` and each app's image manifest at
//! `stage1/rootfs/opt/stage2/<app>/manifest`. Only what a stage1 reads is
//! modelled; unknown fields are ignored, as Go's `encoding/json` does.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum AppcError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("malformed {what} {path}: {source}")]
    Parse {
        what: &'static str,
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: acKind is {found:?}, expected {want}")]
    Kind {
        path: PathBuf,
        found: String,
        want: &'static str,
    },
}

/// `{"name": …, "value": …}`, the shape of labels, annotations and
/// environment variables.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct NameValue {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

pub fn lookup<'a>(list: &'a [NameValue], name: &str) -> Option<&'a str> {
    list.iter()
        .find(|nv| nv.name == name)
        .map(|nv| nv.value.as_str())
}

#[derive(Debug, Clone, Deserialize)]
pub struct Isolator {
    pub name: String,
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MountPoint {
    pub name: String,
    pub path: String,
    #[serde(default, rename = "readOnly")]
    pub read_only: bool,
}

/// `types.App`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    #[serde(default)]
    pub exec: Vec<String>,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub group: String,
    #[serde(default, rename = "supplementaryGIDs")]
    pub supplementary_gids: Vec<u32>,
    #[serde(default)]
    pub working_directory: String,
    #[serde(default)]
    pub environment: Vec<NameValue>,
    #[serde(default)]
    pub isolators: Vec<Isolator>,
    #[serde(default)]
    pub mount_points: Vec<MountPoint>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ImageManifest {
    #[serde(rename = "acKind")]
    pub ac_kind: String,
    pub name: String,
    #[serde(default)]
    pub labels: Vec<NameValue>,
    #[serde(default)]
    pub annotations: Vec<NameValue>,
    #[serde(default)]
    pub app: Option<App>,
}

/// `types.Volume`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub read_only: Option<bool>,
    #[serde(default)]
    pub recursive: Option<bool>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
}

/// `schema.Mount`: a volume (by name, or given inline as `appVolume`) at
/// a path of the app.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    #[serde(default)]
    pub volume: String,
    pub path: String,
    #[serde(default)]
    pub app_volume: Option<Volume>,
}

/// `schema.RuntimeApp`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeApp {
    pub name: String,
    #[serde(default)]
    pub app: Option<App>,
    #[serde(default, rename = "readOnlyRootFS")]
    pub read_only_root_fs: bool,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    #[serde(default)]
    pub annotations: Vec<NameValue>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PodManifest {
    #[serde(rename = "acKind")]
    pub ac_kind: String,
    #[serde(default)]
    pub apps: Vec<RuntimeApp>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    #[serde(default)]
    pub annotations: Vec<NameValue>,
}

/// The pod manifest annotation stage0 sets on a mutable pod.
pub const MUTABLE_ANNOTATION: &str = "coreos.com/rkt/stage1/mutable";

impl PodManifest {
    pub fn load(path: &Path) -> Result<Self, AppcError> {
        let m: Self = parse(path, "pod manifest")?;
        check_kind(path, &m.ac_kind, "PodManifest")?;
        Ok(m)
    }

    pub fn app(&self, name: &str) -> Option<&RuntimeApp> {
        self.apps.iter().find(|a| a.name == name)
    }

    pub fn mutable(&self) -> bool {
        lookup(&self.annotations, MUTABLE_ANNOTATION) == Some("true")
    }
}

impl ImageManifest {
    pub fn load(path: &Path) -> Result<Self, AppcError> {
        let m: Self = parse(path, "image manifest")?;
        check_kind(path, &m.ac_kind, "ImageManifest")?;
        Ok(m)
    }
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, what: &'static str) -> Result<T, AppcError> {
    let text = std::fs::read(path).map_err(|source| AppcError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| AppcError::Parse {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn check_kind(path: &Path, found: &str, want: &'static str) -> Result<(), AppcError> {
    if found == want {
        return Ok(());
    }
    Err(AppcError::Kind {
        path: path.to_path_buf(),
        found: found.to_string(),
        want,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("m");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn pod_manifest_as_stage0_writes_it() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            r#"{"acVersion":"1.30.0","acKind":"PodManifest","apps":[{"name":"web",
            "image":{"name":"example.com/web","id":"sha512-00"},
            "app":{"exec":["/bin/httpd","-f"],"user":"0","group":"0",
                   "environment":[{"name":"A","value":"1"}]},
            "mounts":[{"volume":"data","path":"/data"}]}],
            "volumes":[{"name":"data","kind":"empty"}],
            "annotations":[{"name":"coreos.com/rkt/stage1/mutable","value":"false"}]}"#,
        );
        let m = PodManifest::load(&p).unwrap();
        assert_eq!(m.apps.len(), 1);
        let web = m.app("web").unwrap();
        assert_eq!(web.app.as_ref().unwrap().exec, ["/bin/httpd", "-f"]);
        assert_eq!(web.mounts[0].volume, "data");
        assert_eq!(m.volumes[0].kind, "empty");
        assert!(!m.mutable());
    }

    #[test]
    fn malformed_and_wrong_kind_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "{not json");
        let e = PodManifest::load(&p).unwrap_err().to_string();
        assert!(e.starts_with("malformed pod manifest"), "{e}");
        let p = write(d.path(), r#"{"acKind":"ImageManifest","name":"x"}"#);
        let e = PodManifest::load(&p).unwrap_err().to_string();
        assert!(e.contains("expected PodManifest"), "{e}");
        let e = PodManifest::load(&d.path().join("none")).unwrap_err();
        assert!(matches!(e, AppcError::Read { .. }));
    }
}
