//! hull's configuration file, as Kata has one: `/etc/hull/config.toml`
//! (another path with the global `--config PATH` or `HULL_CONFIG`) holds
//! the defaults that were hard-coded before: the guest kernel and
//! initramfs, guest memory and vCPUs, the memory overhead added to a
//! container's limit, the log level, and timeouts. Each setting can also be
//! given per container by an `io.hull.*` annotation in `config.json`
//! (see [`annotations`]).
//!
//! ```toml
//! [vm]
//! kernel = "/usr/local/share/hull/vmlinux"
//! initramfs = "/usr/local/share/hull/initramfs.cpio"
//! memory_mib = 256
//! vcpus = 1
//! memory_overhead_mib = 48
//!
//! [timeouts]
//! boot_secs = 120
//! power_off_secs = 60
//! agent_request_secs = 60
//! output_grace_secs = 10
//! poststart_grace_ms = 250
//!
//! [log]
//! level = "warn"
//!
//! [annotations]
//! allowed = ["io.hull.vm.memory_mib", "io.hull.vm.vcpus"]
//! ```
//!
//! A missing default file means the built-in defaults; a file named by
//! `--config` or `HULL_CONFIG` must exist. A malformed file, an unknown key
//! or a bad value is an error naming the file and the key.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod annotations;
mod settings;

pub use settings::{value_text, Kind, Setting, ANNOTATION_PREFIX, SETTINGS};

/// Where the configuration file is looked for by default.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/hull/config.toml";
/// The environment variable naming another configuration file.
pub const CONFIG_ENV: &str = "HULL_CONFIG";

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("malformed config file {path}, line {line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("unknown key {key} in the config file {path}")]
    UnknownKey { path: PathBuf, key: String },
    #[error("bad value for {key} in the config file {path}: {reason}")]
    BadValue {
        path: PathBuf,
        key: String,
        reason: String,
    },
    #[error("unknown annotation {name}: hull knows {known}")]
    UnknownAnnotation { name: String, known: String },
    #[error("bad value {value:?} for annotation {name}: {reason}")]
    BadAnnotation {
        name: String,
        value: String,
        reason: String,
    },
    #[error("annotation {name} is not allowed: list it in annotations.allowed of the config file ({path})")]
    AnnotationNotAllowed { name: String, path: String },
}

/// How much the runtime writes to `--log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl LogLevel {
    pub const NAMES: [&'static str; 4] = ["error", "warn", "info", "debug"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "error" => Self::Error,
            "warn" | "warning" => Self::Warn,
            "info" => Self::Info,
            "debug" => Self::Debug,
            _ => return None,
        })
    }
}

/// The guest VM's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSettings {
    /// The guest kernel; `None`: found as before (`HULL_KERNEL`, the
    /// installed layout, next to `hull`).
    pub kernel: Option<PathBuf>,
    /// The initramfs; `None`: found like the kernel (`HULL_INITRD`).
    pub initramfs: Option<PathBuf>,
    /// Guest RAM when the spec sets no memory limit.
    pub memory_mib: u32,
    /// vCPUs when the spec sets no CPU quota.
    pub vcpus: u32,
    /// Guest RAM added on top of a container's memory limit.
    pub memory_overhead_mib: u32,
}

/// Timeouts, in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeoutSettings {
    /// How long the guest may take to boot to its agent's ready line.
    pub boot_secs: u32,
    /// How long a powered-off VM may take to exit before it is killed.
    pub power_off_secs: u32,
    /// How long output may still drain after the workload exited.
    pub output_grace_secs: u32,
    /// How long an agent request (all but `wait`) may take.
    pub agent_request_secs: u32,
    /// How long `start` lets the workload run (or exit) before it runs the
    /// `poststart` hooks (only when there are some).
    pub poststart_grace_ms: u32,
}

/// The whole configuration: the file's values over the built-in defaults,
/// and, per container, the annotations' over those.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub vm: VmSettings,
    pub timeouts: TimeoutSettings,
    pub log_level: LogLevel,
    /// Annotations a container may set (full names, `io.hull.…`).
    pub allowed_annotations: Vec<String>,
    /// The file the values came from (`None`: built-in defaults only).
    pub source: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            vm: VmSettings {
                kernel: None,
                initramfs: None,
                memory_mib: crate::sandbox::DEFAULT_MEM_MIB,
                vcpus: crate::sandbox::DEFAULT_CPUS,
                memory_overhead_mib: crate::host::resources::GUEST_OVERHEAD_MIB as u32,
            },
            timeouts: TimeoutSettings {
                boot_secs: crate::sandbox::DEFAULT_BOOT_TIMEOUT.as_secs() as u32,
                power_off_secs: crate::sandbox::POWER_OFF_TIMEOUT.as_secs() as u32,
                output_grace_secs: crate::sandbox::run::DEFAULT_OUTPUT_GRACE.as_secs() as u32,
                agent_request_secs: crate::sandbox::client::REQUEST_DEADLINE.as_secs() as u32,
                poststart_grace_ms: crate::container::POSTSTART_GRACE.as_millis() as u32,
            },
            log_level: LogLevel::Warn,
            allowed_annotations: SETTINGS
                .iter()
                .filter(|s| !s.unsafe_annotation)
                .map(|s| s.annotation())
                .collect(),
            source: None,
        }
    }
}

/// Which file to read: `flag` (`--config`), else `env` (`HULL_CONFIG`),
/// else the default path; `true` when the file must exist.
pub fn config_path(flag: Option<&Path>, env: Option<OsString>) -> (PathBuf, bool) {
    if let Some(path) = flag {
        return (path.to_path_buf(), true);
    }
    match env.filter(|v| !v.is_empty()) {
        Some(path) => (PathBuf::from(path), true),
        None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
    }
}

impl Config {
    /// The configuration `--config` (`flag`) or `HULL_CONFIG` name, or the
    /// default file, or the built-in defaults when that is absent.
    pub fn load(flag: Option<&Path>) -> Result<Self, ConfigError> {
        let (path, required) = config_path(flag, std::env::var_os(CONFIG_ENV));
        Self::load_file(&path, required)
    }

    /// Reads `path`; a missing file is the defaults unless `required`.
    pub fn load_file(path: &Path, required: bool) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Self::default())
            }
            Err(e) => {
                return Err(ConfigError::Read {
                    path: path.into(),
                    reason: e.to_string(),
                })
            }
        };
        Self::parse(&text, path)
    }

    /// Parses the text of the file at `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.into(),
            line: e
                .span()
                .map_or(1, |s| text[..s.start].matches('\n').count() + 1),
            message: e.message().trim().to_string(),
        })?;
        let mut config = Self {
            source: Some(path.into()),
            ..Self::default()
        };
        let bad = |key: &str, reason: String| ConfigError::BadValue {
            path: path.into(),
            key: key.into(),
            reason,
        };
        for (section, value) in &table {
            if !settings::is_section(section) {
                return Err(ConfigError::UnknownKey {
                    path: path.into(),
                    key: section.clone(),
                });
            }
            let toml::Value::Table(keys) = value else {
                return Err(bad(section, "must be a table ([section])".into()));
            };
            for (name, value) in keys {
                let key = format!("{section}.{name}");
                if key == "annotations.allowed" {
                    config.allowed_annotations =
                        annotations::parse_allowed(value).map_err(|r| bad(&key, r))?;
                    continue;
                }
                let Some(setting) = SETTINGS.iter().find(|s| s.key == key) else {
                    return Err(ConfigError::UnknownKey {
                        path: path.into(),
                        key,
                    });
                };
                config
                    .set(setting, settings::Raw::Toml(value))
                    .map_err(|r| bad(&key, r))?;
            }
        }
        Ok(config)
    }

    /// Sets one setting from the file or an annotation; the reason it is
    /// refused otherwise.
    fn set(&mut self, setting: &Setting, raw: settings::Raw) -> Result<(), String> {
        let value = setting.kind.check(raw)?;
        settings::store(self, setting.key, value);
        Ok(())
    }

    /// The VM size used when the spec sets no limits, and the overhead
    /// added to a memory limit.
    pub fn vm_defaults(&self) -> crate::host::resources::VmDefaults {
        crate::host::resources::VmDefaults {
            mem_mib: self.vm.memory_mib,
            cpus: self.vm.vcpus,
            overhead_mib: self.vm.memory_overhead_mib.into(),
        }
    }

    /// The boot timeout.
    pub fn boot_timeout(&self) -> Duration {
        Duration::from_secs(self.timeouts.boot_secs.into())
    }

    /// How long a powered-off VM may take to exit.
    pub fn power_off_timeout(&self) -> Duration {
        Duration::from_secs(self.timeouts.power_off_secs.into())
    }

    /// How long an agent request may take.
    pub fn agent_deadline(&self) -> Duration {
        Duration::from_secs(self.timeouts.agent_request_secs.into())
    }

    /// How long output may drain after the workload exited.
    pub fn output_grace(&self) -> Duration {
        Duration::from_secs(self.timeouts.output_grace_secs.into())
    }

    /// How long `start` lets the workload run before `poststart` hooks.
    pub fn poststart_grace(&self) -> Duration {
        Duration::from_millis(self.timeouts.poststart_grace_ms.into())
    }
}

#[cfg(test)]
mod tests;
