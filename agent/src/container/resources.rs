//! Applying [`Resources`] to a container's cgroup v2 directory: `memory.max`,
//! `cpu.max`, `cpu.weight` and `pids.max`. Settings are written in that
//! order; the first one the kernel refuses stops the rest.

use std::io;
use std::path::Path;

use agent_protocol::container::{Resources, MEMORY_UNLIMITED};

/// `cpu.max`'s period bounds (µs), as the kernel checks them.
const CPU_PERIOD_US: std::ops::RangeInclusive<u64> = 1_000..=1_000_000;
/// `cpu.weight`'s bounds.
const CPU_WEIGHT: std::ops::RangeInclusive<u64> = 1..=10_000;
/// What `cpu.max` holds when nothing was written.
const CPU_MAX_DEFAULT: (&str, &str) = ("max", "100000");

#[derive(Debug, thiserror::Error)]
pub enum ResourcesError {
    #[error("{setting} {value} is out of range ({min} to {max})")]
    Range {
        setting: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("cannot set {file} to {value:?}: {source}")]
    Write {
        file: &'static str,
        value: String,
        source: io::Error,
    },
}

fn write(dir: &Path, file: &'static str, value: String) -> Result<(), ResourcesError> {
    std::fs::write(dir.join(file), &value).map_err(|source| ResourcesError::Write {
        file,
        value,
        source,
    })
}

fn check(
    setting: &'static str,
    value: u64,
    range: &std::ops::RangeInclusive<u64>,
) -> Result<(), ResourcesError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(ResourcesError::Range {
            setting,
            value,
            min: *range.start(),
            max: *range.end(),
        })
    }
}

/// `max` for "no limit", else the number.
fn limit(value: i64) -> String {
    if value > 0 {
        value.to_string()
    } else {
        "max".into()
    }
}

/// Writes the settings of `resources` that are set into the cgroup `dir`.
pub fn apply(dir: &Path, resources: &Resources) -> Result<(), ResourcesError> {
    if let Some(period) = resources.cpu_period {
        check("cpu period", period, &CPU_PERIOD_US)?;
    }
    if let Some(weight) = resources.cpu_weight {
        check("cpu weight", weight, &CPU_WEIGHT)?;
    }
    if let Some(max) = resources.memory_max {
        let value = if max == MEMORY_UNLIMITED {
            "max".into()
        } else {
            max.to_string()
        };
        write(dir, "memory.max", value)?;
    }
    if let Some(low) = resources.memory_low {
        write(dir, "memory.low", low.to_string())?;
    }
    if resources.cpu_quota.is_some() || resources.cpu_period.is_some() {
        // A half not given keeps its current value.
        let current = std::fs::read_to_string(dir.join("cpu.max")).unwrap_or_default();
        let mut fields = current.split_whitespace();
        let old_quota = fields.next().unwrap_or(CPU_MAX_DEFAULT.0).to_string();
        let old_period = fields.next().unwrap_or(CPU_MAX_DEFAULT.1).to_string();
        let quota = resources.cpu_quota.map_or(old_quota, limit);
        let period = resources.cpu_period.map_or(old_period, |p| p.to_string());
        write(dir, "cpu.max", format!("{quota} {period}"))?;
    }
    if let Some(weight) = resources.cpu_weight {
        write(dir, "cpu.weight", weight.to_string())?;
    }
    if let Some(pids) = resources.pids_max {
        write(dir, "pids.max", limit(pids))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("hull-agent-test-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn read(&self, file: &str) -> Option<String> {
            std::fs::read_to_string(self.0.join(file)).ok()
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn every_setting_lands_in_its_file() {
        let dir = Dir::new("res-all");
        apply(
            &dir.0,
            &Resources {
                memory_max: Some(64 << 20),
                memory_low: Some(32 << 20),
                cpu_quota: Some(50_000),
                cpu_period: Some(200_000),
                cpu_weight: Some(39),
                pids_max: Some(100),
            },
        )
        .unwrap();
        assert_eq!(dir.read("memory.max").as_deref(), Some("67108864"));
        assert_eq!(dir.read("memory.low").as_deref(), Some("33554432"));
        assert_eq!(dir.read("cpu.max").as_deref(), Some("50000 200000"));
        assert_eq!(dir.read("cpu.weight").as_deref(), Some("39"));
        assert_eq!(dir.read("pids.max").as_deref(), Some("100"));
    }

    #[test]
    fn unlimited_values_write_max() {
        let dir = Dir::new("res-max");
        apply(
            &dir.0,
            &Resources {
                memory_max: Some(MEMORY_UNLIMITED),
                cpu_quota: Some(-1),
                pids_max: Some(0),
                ..Resources::default()
            },
        )
        .unwrap();
        assert_eq!(dir.read("memory.max").as_deref(), Some("max"));
        assert_eq!(dir.read("cpu.max").as_deref(), Some("max 100000"));
        assert_eq!(dir.read("pids.max").as_deref(), Some("max"));
    }

    #[test]
    fn unset_settings_are_left_alone_and_cpu_max_keeps_the_other_half() {
        let dir = Dir::new("res-partial");
        std::fs::write(dir.0.join("cpu.max"), "25000 50000\n").unwrap();
        apply(
            &dir.0,
            &Resources {
                cpu_period: Some(100_000),
                ..Resources::default()
            },
        )
        .unwrap();
        assert_eq!(dir.read("cpu.max").as_deref(), Some("25000 100000"));
        apply(
            &dir.0,
            &Resources {
                cpu_quota: Some(75_000),
                ..Resources::default()
            },
        )
        .unwrap();
        assert_eq!(dir.read("cpu.max").as_deref(), Some("75000 100000"));
        assert_eq!(dir.read("memory.max"), None);
        assert_eq!(dir.read("pids.max"), None);
        apply(&dir.0, &Resources::default()).unwrap();
    }

    #[test]
    fn out_of_range_values_are_refused_before_anything_is_written() {
        let dir = Dir::new("res-range");
        let e = apply(
            &dir.0,
            &Resources {
                memory_max: Some(1 << 20),
                cpu_weight: Some(20_000),
                ..Resources::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cpu weight 20000 is out of range (1 to 10000)"
        );
        assert_eq!(dir.read("memory.max"), None);
        let e = apply(
            &dir.0,
            &Resources {
                cpu_period: Some(10),
                ..Resources::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, ResourcesError::Range { .. }), "{e}");
    }

    #[test]
    fn a_refused_write_names_the_file_and_value() {
        let dir = Dir::new("res-refused");
        let missing = dir.0.join("gone");
        let e = apply(
            &missing,
            &Resources {
                pids_max: Some(5),
                ..Resources::default()
            },
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("cannot set pids.max to \"5\": "),
            "{e}"
        );
    }
}
