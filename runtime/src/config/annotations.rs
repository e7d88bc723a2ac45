//! Per-container settings: the `io.hull.*` annotations of `config.json`,
//! applied over the configuration file's values. Every setting of the file
//! has one (`vm.memory_mib` → `io.hull.vm.memory_mib`); values are text
//! (`"512"`, `"/opt/hull/vmlinux"`, `"debug"`) checked as the file's are.
//! An unknown `io.hull.*` annotation, a bad value, or one the file does not
//! allow (`annotations.allowed`; the kernel and initramfs paths are off by
//! default, as they choose what the host boots) is an error naming it.
//! Other annotations are not hull's and are left alone.

use super::settings::{Raw, ANNOTATION_PREFIX, SETTINGS};
use super::{Config, ConfigError};

/// Every annotation hull reads, with its setting.
pub fn known() -> impl Iterator<Item = (String, &'static super::Setting)> {
    SETTINGS.iter().map(|s| (s.annotation(), s))
}

/// The annotations whose setting could weaken isolation (for `hull
/// features`' `potentiallyUnsafeConfigAnnotations`).
pub fn potentially_unsafe() -> Vec<String> {
    SETTINGS
        .iter()
        .filter(|s| s.unsafe_annotation)
        .map(|s| s.annotation())
        .collect()
}

/// `annotations.allowed` of the file: a list of known annotation names.
pub(super) fn parse_allowed(value: &toml::Value) -> Result<Vec<String>, String> {
    let toml::Value::Array(items) = value else {
        return Err("expected a list of annotation names".into());
    };
    let mut allowed = Vec::new();
    for item in items {
        let Some(name) = item.as_str() else {
            return Err("expected a list of annotation names".into());
        };
        if !known().any(|(n, _)| n == name) {
            return Err(format!("unknown annotation {name}"));
        }
        allowed.push(name.to_string());
    }
    Ok(allowed)
}

impl Config {
    /// This configuration with the container's `io.hull.*` annotations
    /// applied. Takes any (name, value) pairs: an OCI spec's
    /// `annotations()` map (`.iter().map(|(k, v)| (k.as_str(), v.as_str()))`)
    /// or hull's own.
    pub fn with_annotations<'a>(
        &self,
        annotations: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Config, ConfigError> {
        let mut ours: Vec<(&str, &str)> = annotations
            .into_iter()
            .filter(|(name, _)| name.starts_with(ANNOTATION_PREFIX))
            .collect();
        // Maps come in any order: report the first by name, every time.
        ours.sort_unstable();
        let mut config = self.clone();
        for (name, value) in ours {
            let Some(setting) = SETTINGS.iter().find(|s| s.annotation() == name) else {
                return Err(ConfigError::UnknownAnnotation {
                    name: name.into(),
                    known: known().map(|(n, _)| n).collect::<Vec<_>>().join(", "),
                });
            };
            if !self.allowed_annotations.iter().any(|a| a == name) {
                return Err(ConfigError::AnnotationNotAllowed {
                    name: name.into(),
                    path: self.source.as_ref().map_or_else(
                        || super::DEFAULT_CONFIG_PATH.to_string(),
                        |p| p.display().to_string(),
                    ),
                });
            }
            config
                .set(setting, Raw::Text(value))
                .map_err(|reason| ConfigError::BadAnnotation {
                    name: name.into(),
                    value: value.into(),
                    reason,
                })?;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    use super::*;

    fn apply(config: &Config, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        // As the lead's oci_spec Spec gives them: a HashMap<String, String>.
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        config.with_annotations(map.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    #[test]
    fn annotations_override_the_file() {
        let file = Config::parse(
            "[vm]\nmemory_mib = 512\nvcpus = 2\n",
            Path::new("/etc/hull/config.toml"),
        )
        .unwrap();
        let c = apply(
            &file,
            &[
                ("io.hull.vm.memory_mib", "1024"),
                ("io.hull.timeouts.boot_secs", "30"),
                ("io.hull.log.level", "debug"),
                ("org.example.other", "left alone"),
            ],
        )
        .unwrap();
        assert_eq!((c.vm.memory_mib, c.vm.vcpus), (1024, 2));
        assert_eq!(c.timeouts.boot_secs, 30);
        assert_eq!(c.log_level, super::super::LogLevel::Debug);
        assert_eq!(apply(&file, &[]).unwrap(), file);
    }

    #[test]
    fn unknown_bad_and_disallowed_annotations_are_named() {
        let d = Config::default();
        let e = apply(&d, &[("io.hull.vm.memroy_mib", "1")]).unwrap_err();
        assert!(
            matches!(&e, ConfigError::UnknownAnnotation { name, .. } if name == "io.hull.vm.memroy_mib")
        );
        assert!(e.to_string().contains("io.hull.vm.memory_mib"), "{e}");
        let e = apply(&d, &[("io.hull.vm.vcpus", "lots")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad value \"lots\" for annotation io.hull.vm.vcpus: expected an integer from 1 to 32"
        );
        let e = apply(&d, &[("io.hull.vm.vcpus", "0")]).unwrap_err();
        assert!(e.to_string().contains("0 is out of range 1 to 32"), "{e}");
        let e = apply(&d, &[("io.hull.vm.kernel", "/tmp/evil")]).unwrap_err();
        assert_eq!(
            e,
            ConfigError::AnnotationNotAllowed {
                name: "io.hull.vm.kernel".into(),
                path: "/etc/hull/config.toml".into()
            }
        );
        // The first in name order is reported, whatever the map's order.
        let e = apply(&d, &[("io.hull.zz", "1"), ("io.hull.aa", "1")]).unwrap_err();
        assert!(
            e.to_string().starts_with("unknown annotation io.hull.aa"),
            "{e}"
        );
    }

    #[test]
    fn the_file_can_allow_the_paths() {
        let file = Config::parse(
            "[annotations]\nallowed = [\"io.hull.vm.kernel\"]\n",
            Path::new("/c.toml"),
        )
        .unwrap();
        let c = apply(&file, &[("io.hull.vm.kernel", "/opt/vmlinux")]).unwrap();
        assert_eq!(c.vm.kernel, Some(PathBuf::from("/opt/vmlinux")));
        // Only what is listed: the rest is now off.
        let e = apply(&file, &[("io.hull.vm.vcpus", "2")]).unwrap_err();
        assert!(e.to_string().contains("(/c.toml)"), "{e}");
        let e = apply(&file, &[("io.hull.vm.kernel", "vmlinux")]).unwrap_err();
        assert!(e.to_string().contains("is not an absolute path"), "{e}");
        let e = Config::parse(
            "[annotations]\nallowed = [\"io.hull.nope\"]\n",
            Path::new("/c"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad value for annotations.allowed in the config file /c: unknown annotation io.hull.nope"
        );
    }

    #[test]
    fn paths_are_potentially_unsafe_and_off_by_default() {
        assert_eq!(
            potentially_unsafe(),
            ["io.hull.vm.kernel", "io.hull.vm.initramfs"]
        );
        let d = Config::default();
        for name in potentially_unsafe() {
            assert!(!d.allowed_annotations.contains(&name));
        }
        assert_eq!(d.allowed_annotations.len(), SETTINGS.len() - 2);
    }
}
