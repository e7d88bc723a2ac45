//! The table of settings: each one's key in the file (`vm.memory_mib`),
//! its annotation (`io.hull.vm.memory_mib`), what values it takes, and
//! where it is stored in [`Config`].

use std::path::PathBuf;

use super::{Config, LogLevel};
use crate::host::resources::{MAX_CPUS, MAX_MEM_MIB, MIN_MEM_MIB};

/// The prefix of hull's annotations.
pub const ANNOTATION_PREFIX: &str = "io.hull.";

/// What values a setting takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An integer in `min..=max`.
    Int { min: u32, max: u32 },
    /// An absolute path.
    Path,
    /// A log level name.
    Level,
}

/// One setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// `section.name` in the file.
    pub key: &'static str,
    pub kind: Kind,
    /// One line of documentation (shown by `hull features`).
    pub about: &'static str,
    /// A container setting it could weaken isolation (a host path the VM
    /// boots from): its annotation is off unless the file allows it.
    pub unsafe_annotation: bool,
}

impl Setting {
    /// The annotation that sets it per container.
    pub fn annotation(&self) -> String {
        format!("{ANNOTATION_PREFIX}{}", self.key)
    }
}

/// Every setting, in documentation order.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "vm.kernel",
        kind: Kind::Path,
        about: "guest kernel: an uncompressed vmlinux with a PVH note",
        unsafe_annotation: true,
    },
    Setting {
        key: "vm.initramfs",
        kind: Kind::Path,
        about: "guest initramfs holding hull-agent as /init",
        unsafe_annotation: true,
    },
    Setting {
        key: "vm.memory_mib",
        kind: Kind::Int {
            min: MIN_MEM_MIB as u32,
            max: MAX_MEM_MIB as u32,
        },
        about: "guest RAM in MiB when the spec sets no memory limit",
        unsafe_annotation: false,
    },
    Setting {
        key: "vm.vcpus",
        kind: Kind::Int {
            min: 1,
            max: MAX_CPUS,
        },
        about: "vCPUs when the spec sets no CPU quota",
        unsafe_annotation: false,
    },
    Setting {
        key: "vm.memory_overhead_mib",
        kind: Kind::Int { min: 0, max: 4096 },
        about: "guest RAM in MiB added to a container's memory limit",
        unsafe_annotation: false,
    },
    Setting {
        key: "log.level",
        kind: Kind::Level,
        about: "what --log gets: error, warn, info or debug",
        unsafe_annotation: false,
    },
    Setting {
        key: "timeouts.boot_secs",
        kind: Kind::Int { min: 1, max: 3600 },
        about: "seconds the guest may take to boot to its agent",
        unsafe_annotation: false,
    },
    Setting {
        key: "timeouts.power_off_secs",
        kind: Kind::Int { min: 1, max: 3600 },
        about: "seconds a powered-off VM may take to exit before it is killed",
        unsafe_annotation: false,
    },
    Setting {
        key: "timeouts.agent_request_secs",
        kind: Kind::Int { min: 1, max: 3600 },
        about: "seconds any agent request but wait may take before it fails",
        unsafe_annotation: false,
    },
    Setting {
        key: "timeouts.output_grace_secs",
        kind: Kind::Int { min: 0, max: 3600 },
        about: "seconds output may still drain after the workload exited",
        unsafe_annotation: false,
    },
    Setting {
        key: "timeouts.poststart_grace_ms",
        kind: Kind::Int { min: 0, max: 60000 },
        about: "milliseconds start lets the workload run (or exit) before poststart hooks",
        unsafe_annotation: false,
    },
];

/// Whether `name` is a section of the file.
pub fn is_section(name: &str) -> bool {
    name == "annotations"
        || SETTINGS
            .iter()
            .any(|s| s.key.split('.').next() == Some(name))
}

/// A value as given: typed from the file, text from an annotation.
#[derive(Debug, Clone, Copy)]
pub enum Raw<'a> {
    Toml(&'a toml::Value),
    Text(&'a str),
}

/// A checked value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(u32),
    Path(PathBuf),
    Level(LogLevel),
}

impl Kind {
    /// The value `raw` stands for, or why it is refused.
    pub fn check(&self, raw: Raw) -> Result<Value, String> {
        match *self {
            Kind::Int { min, max } => {
                let n: i64 = match raw {
                    Raw::Toml(toml::Value::Integer(n)) => *n,
                    Raw::Text(s) => s
                        .trim()
                        .parse()
                        .map_err(|_| format!("expected an integer from {min} to {max}"))?,
                    Raw::Toml(_) => return Err(format!("expected an integer from {min} to {max}")),
                };
                match u32::try_from(n) {
                    Ok(n) if (min..=max).contains(&n) => Ok(Value::Int(n)),
                    _ => Err(format!("{n} is out of range {min} to {max}")),
                }
            }
            Kind::Path => {
                let s = text(raw).ok_or("expected a path (a string)")?;
                if !s.starts_with('/') {
                    return Err(format!("{s:?} is not an absolute path"));
                }
                Ok(Value::Path(s.into()))
            }
            Kind::Level => {
                let s = text(raw).ok_or("expected a log level (a string)")?;
                LogLevel::parse(s)
                    .map(Value::Level)
                    .ok_or_else(|| format!("{s:?} is not one of {}", LogLevel::NAMES.join(", ")))
            }
        }
    }

    /// The values it takes, for documentation.
    pub fn describe(&self) -> String {
        match self {
            Kind::Int { min, max } => format!("integer {min}-{max}"),
            Kind::Path => "absolute path".into(),
            Kind::Level => LogLevel::NAMES.join("|"),
        }
    }
}

fn text<'a>(raw: Raw<'a>) -> Option<&'a str> {
    match raw {
        Raw::Toml(toml::Value::String(s)) => Some(s),
        Raw::Text(s) => Some(s),
        Raw::Toml(_) => None,
    }
}

/// Stores a checked value under its key.
pub fn store(config: &mut Config, key: &str, value: Value) {
    match (key, value) {
        ("vm.kernel", Value::Path(p)) => config.vm.kernel = Some(p),
        ("vm.initramfs", Value::Path(p)) => config.vm.initramfs = Some(p),
        ("vm.memory_mib", Value::Int(n)) => config.vm.memory_mib = n,
        ("vm.vcpus", Value::Int(n)) => config.vm.vcpus = n,
        ("vm.memory_overhead_mib", Value::Int(n)) => config.vm.memory_overhead_mib = n,
        ("log.level", Value::Level(l)) => config.log_level = l,
        ("timeouts.boot_secs", Value::Int(n)) => config.timeouts.boot_secs = n,
        ("timeouts.power_off_secs", Value::Int(n)) => config.timeouts.power_off_secs = n,
        ("timeouts.output_grace_secs", Value::Int(n)) => config.timeouts.output_grace_secs = n,
        ("timeouts.agent_request_secs", Value::Int(n)) => config.timeouts.agent_request_secs = n,
        ("timeouts.poststart_grace_ms", Value::Int(n)) => config.timeouts.poststart_grace_ms = n,
        // Kinds and keys come from SETTINGS together (a test checks that
        // every setting is stored).
        _ => {}
    }
}

/// The value of `key` in `config`, as text (`"256"`, a path, or `"found
/// at run time"` for an unset path).
pub fn value_text(config: &Config, key: &str) -> String {
    let path = |p: &Option<PathBuf>| {
        p.as_ref()
            .map_or_else(|| "found at run time".into(), |p| p.display().to_string())
    };
    match key {
        "vm.kernel" => path(&config.vm.kernel),
        "vm.initramfs" => path(&config.vm.initramfs),
        "vm.memory_mib" => config.vm.memory_mib.to_string(),
        "vm.vcpus" => config.vm.vcpus.to_string(),
        "vm.memory_overhead_mib" => config.vm.memory_overhead_mib.to_string(),
        "log.level" => LogLevel::NAMES[config.log_level as usize].into(),
        "timeouts.boot_secs" => config.timeouts.boot_secs.to_string(),
        "timeouts.power_off_secs" => config.timeouts.power_off_secs.to_string(),
        "timeouts.output_grace_secs" => config.timeouts.output_grace_secs.to_string(),
        "timeouts.agent_request_secs" => config.timeouts.agent_request_secs.to_string(),
        "timeouts.poststart_grace_ms" => config.timeouts.poststart_grace_ms.to_string(),
        _ => String::new(),
    }
}
