//! OCI bundles: a directory with a `config.json` runtime spec and (usually)
//! the container's root file system. [`Bundle::load`] reads and validates the
//! spec once; [`Bundle::container_config`] translates it into what the agent
//! takes, with every host path replaced by its place in the sandbox's
//! virtio-fs share.

use std::io;
use std::path::{Path, PathBuf};

pub mod default_spec;
pub mod pod;
pub mod spec;
mod translate;

pub use translate::{guest_mount_source, guest_rootfs};

/// The spec's file name inside a bundle.
pub const CONFIG_FILE: &str = "config.json";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("bundle directory {path}: {source}")]
    Dir { path: PathBuf, source: io::Error },
    #[error("{path} not found: is {dir} an OCI bundle?")]
    NoConfig { path: PathBuf, dir: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is malformed: {source}")]
    Malformed {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// Fields hull cannot apply (see [`spec::support`]).
    #[error("{0}")]
    Unsupported(String),
    #[error("hooks: {0}")]
    Hook(String),
    #[error("the spec has no process")]
    NoProcess,
    #[error("process.args is empty: the spec names no program to run")]
    NoArgs,
    #[error("process.cwd {0:?} is not an absolute path")]
    RelativeCwd(String),
    #[error("the spec has no root (root.path)")]
    NoRoot,
    #[error("root.path {path}: {source}")]
    RootMissing { path: PathBuf, source: io::Error },
    #[error("root.path {0} is not a directory")]
    RootNotDir(PathBuf),
    #[error("mount {index}: destination {destination:?} is not an absolute path")]
    RelativeDestination { index: usize, destination: String },
    #[error("mount {index} ({destination}): a bind mount needs a source")]
    BindWithoutSource { index: usize, destination: String },
}

/// A bind mount whose source is a host path: the sandbox binds `source` into
/// its share at `mounts/<index>/<name>` (see [`guest_mount_source`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostBind {
    /// Index of the mount in the spec's `mounts`.
    pub index: usize,
    /// Absolute host path (relative sources are resolved against the bundle).
    pub source: PathBuf,
    /// `rbind`: submounts come along.
    pub recursive: bool,
    /// `ro`: the host side of the share is read-only too, so the guest
    /// cannot write through the share even as root.
    pub readonly: bool,
}

impl HostBind {
    /// The name the source gets in the share (its own file name; `root`
    /// for `/`).
    pub fn share_name(&self) -> String {
        self.source
            .file_name()
            .map_or_else(|| "root".into(), |n| n.to_string_lossy().into_owned())
    }
}

/// A loaded, validated bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory, absolute.
    pub dir: PathBuf,
    pub spec: spec::Spec,
    /// The spec's hooks, checked.
    pub hooks: spec::Hooks,
    /// Lines to log: fields accepted without effect, and fields `oci-spec`
    /// does not know (ignored, as runc ignores them).
    pub warnings: Vec<String>,
    /// The container's root file system on the host, absolute.
    pub rootfs: PathBuf,
    /// The spec's bind mounts, in order.
    pub host_binds: Vec<HostBind>,
}

impl Bundle {
    /// Reads `dir/config.json` and checks what hull relies on.
    pub fn load(dir: &Path) -> Result<Self, BundleError> {
        let dir = std::fs::canonicalize(dir).map_err(|source| BundleError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(CONFIG_FILE);
        let bytes = std::fs::read(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => BundleError::NoConfig {
                path: path.clone(),
                dir: dir.clone(),
            },
            _ => BundleError::Read {
                path: path.clone(),
                source,
            },
        })?;
        let parsed =
            spec::parse(&bytes).map_err(|source| BundleError::Malformed { path, source })?;
        let mut bundle = Self::from_spec(dir, parsed.spec)?;
        bundle.warnings.extend(
            parsed
                .unknown_fields
                .iter()
                .map(|f| format!("config.json: unknown field {f} ignored")),
        );
        Ok(bundle)
    }

    /// Validates an already parsed spec of the bundle in `dir` (absolute).
    pub fn from_spec(dir: PathBuf, spec: spec::Spec) -> Result<Self, BundleError> {
        let process = spec.process().as_ref().ok_or(BundleError::NoProcess)?;
        if process.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(BundleError::NoArgs);
        }
        if !process.cwd().is_absolute() {
            return Err(BundleError::RelativeCwd(
                process.cwd().to_string_lossy().into_owned(),
            ));
        }
        let report = spec::support::check(&spec);
        if let Some(e) = report.error() {
            return Err(BundleError::Unsupported(e));
        }
        let warnings = report
            .logged
            .iter()
            .map(|f| format!("config.json: {} has no effect: {}", f.field, f.reason))
            .collect();
        let hooks = spec::Hooks::from_spec(spec.hooks().as_ref()).map_err(BundleError::Hook)?;
        let root = spec.root().as_ref().ok_or(BundleError::NoRoot)?;
        let rootfs = dir.join(root.path());
        let meta = std::fs::metadata(&rootfs).map_err(|source| BundleError::RootMissing {
            path: rootfs.clone(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(BundleError::RootNotDir(rootfs));
        }
        let mut host_binds = Vec::new();
        for (index, mount) in spec.mounts().iter().flatten().enumerate() {
            let destination = || mount.destination().to_string_lossy().into_owned();
            if !mount.destination().is_absolute() {
                return Err(BundleError::RelativeDestination {
                    index,
                    destination: destination(),
                });
            }
            if !is_bind(mount) {
                continue;
            }
            let source = mount
                .source()
                .as_deref()
                .filter(|s| !s.as_os_str().is_empty())
                .ok_or_else(|| BundleError::BindWithoutSource {
                    index,
                    destination: destination(),
                })?;
            let options = mount.options().as_deref().unwrap_or_default();
            host_binds.push(HostBind {
                index,
                source: dir.join(source),
                recursive: options.iter().any(|o| o == "rbind"),
                readonly: options.iter().any(|o| o == "ro"),
            });
        }
        Ok(Self {
            dir,
            spec,
            hooks,
            warnings,
            rootfs,
            host_binds,
        })
    }

    /// Whether the init process uses a terminal.
    pub fn terminal(&self) -> bool {
        spec::terminal(&self.spec)
    }

    /// The spec's `linux.resources`, as the host side uses them.
    pub fn resources(&self) -> Option<spec::LinuxResources> {
        self.spec
            .linux()
            .as_ref()?
            .resources()
            .as_ref()
            .map(spec::LinuxResources::from)
    }

    /// The limits the VM is sized for: a pod sandbox's pod-level ones (see
    /// [`pod::pod_resources`]) when its annotations give them, else the
    /// container's own.
    pub fn vm_resources(&self) -> Result<Option<spec::LinuxResources>, pod::PodError> {
        Ok(pod::pod_resources(&self.spec)?.or_else(|| self.resources()))
    }

    /// Whether the root file system is read-only.
    pub fn readonly_root(&self) -> bool {
        self.spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false)
    }
}

/// A bind mount: type `bind`, or `bind`/`rbind` among the options (the OCI
/// rule; runc accepts either).
pub fn is_bind(mount: &oci_spec::runtime::Mount) -> bool {
    mount.typ().as_deref() == Some("bind")
        || mount
            .options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

#[cfg(test)]
mod tests;
