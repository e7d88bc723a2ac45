//! appc isolators (appc/spec `schema/types/isolator_*.go`) as OCI
//! settings: `resource/memory` and `resource/cpu` limits (Kubernetes
//! quantities), `os/linux/capabilities-{retain,remove}-set`,
//! `os/linux/seccomp-{retain,remove}-set`, `os/linux/no-new-privileges`,
//! `os/linux/oom-score-adj`. Any other isolator is refused by name.

use serde_json::{json, Value};

use crate::appc::Isolator;

/// The CFS period the CPU limit is expressed in, microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IsolatorError {
    #[error("isolator {name}: {what}")]
    Bad { name: String, what: String },
    #[error("isolator {0} is not supported by hull's stage1")]
    Unsupported(String),
}

fn bad(name: &str, what: impl Into<String>) -> IsolatorError {
    IsolatorError::Bad {
        name: name.into(),
        what: what.into(),
    }
}

/// A Kubernetes quantity ("512Mi", "1G", "500m", "2") scaled by 1000 (so
/// "500m" is 500 and "1" is 1000): exact for both bytes and millicores.
pub fn quantity_milli(text: &str) -> Option<u128> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let mult: u128 = match suffix {
        "" => 1000,
        "m" => 1,
        "k" => 1000 * 1000,
        "M" => 1000 * 1_000_000,
        "G" => 1000 * 1_000_000_000,
        "T" => 1000 * 1_000_000_000_000,
        "Ki" => 1000 << 10,
        "Mi" => 1000 << 20,
        "Gi" => 1000 << 30,
        "Ti" => 1000 << 40,
        _ => return None,
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut value = int.checked_mul(mult)?;
    let mut scale = mult;
    for d in frac.chars() {
        scale /= 10;
        value = value.checked_add(u128::from(d.to_digit(10)?) * scale)?;
    }
    Some(value)
}

/// What an app's isolators ask for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    pub cpu_millis: Option<u64>,
    /// `Some`: exactly these capabilities; `None`: the default set less
    /// [`Limits::caps_removed`].
    pub caps_retained: Option<Vec<String>>,
    pub caps_removed: Vec<String>,
    pub seccomp: Option<Value>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i64>,
}

fn limit(name: &str, v: &Value) -> Result<Option<u128>, IsolatorError> {
    match &v["limit"] {
        Value::Null => Ok(None),
        Value::String(s) => quantity_milli(s)
            .map(Some)
            .ok_or_else(|| bad(name, format!("limit {s:?} is not a quantity"))),
        Value::Number(n) => n
            .as_u64()
            .map(|n| Some(u128::from(n) * 1000))
            .ok_or_else(|| bad(name, format!("limit {n} is not a quantity"))),
        other => Err(bad(name, format!("limit {other} is not a quantity"))),
    }
}

fn set(name: &str, v: &Value) -> Result<Vec<String>, IsolatorError> {
    let list = v["set"]
        .as_array()
        .ok_or_else(|| bad(name, "no \"set\" list"))?;
    list.iter()
        .map(|s| {
            s.as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(name, format!("{s} is not a string")))
        })
        .collect()
}

/// Reads `isolators`; capabilities and seccomp are left out when the run
/// disables them (`--disable-capabilities-restriction`, `--disable-seccomp`).
pub fn limits(
    isolators: &[Isolator],
    with_caps: bool,
    with_seccomp: bool,
) -> Result<Limits, IsolatorError> {
    let mut l = Limits::default();
    for iso in isolators {
        let (name, v) = (iso.name.as_str(), &iso.value);
        match name {
            "resource/memory" => {
                l.memory_bytes =
                    limit(name, v)?.map(|m| u64::try_from(m / 1000).unwrap_or(u64::MAX))
            }
            "resource/cpu" => {
                l.cpu_millis = limit(name, v)?.map(|m| u64::try_from(m).unwrap_or(u64::MAX))
            }
            "os/linux/capabilities-retain-set" if with_caps => {
                l.caps_retained = Some(set(name, v)?.into_iter().map(cap_name).collect())
            }
            "os/linux/capabilities-remove-set" if with_caps => {
                l.caps_removed = set(name, v)?.into_iter().map(cap_name).collect()
            }
            "os/linux/capabilities-retain-set" | "os/linux/capabilities-remove-set" => {}
            "os/linux/seccomp-retain-set" | "os/linux/seccomp-remove-set" if with_seccomp => {
                l.seccomp = Some(seccomp(name, v)?)
            }
            "os/linux/seccomp-retain-set" | "os/linux/seccomp-remove-set" => {}
            "os/linux/no-new-privileges" => l.no_new_privileges = v.as_bool().unwrap_or(false),
            "os/linux/oom-score-adj" => {
                l.oom_score_adj = Some(v.as_i64().ok_or_else(|| bad(name, "not an integer"))?)
            }
            other => return Err(IsolatorError::Unsupported(other.to_string())),
        }
    }
    Ok(l)
}

/// `CAP_X` from `CAP_X` or `x`.
fn cap_name(c: String) -> String {
    let up = c.to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The capabilities an appc app gets by default (appc's spec, as rkt's
/// stage1 gives them).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETUID",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETFCAP",
    "CAP_SYS_CHROOT",
];

/// An OCI seccomp profile from a retain set (only these syscalls; the rest
/// fail with `errno`, default EPERM) or a remove set (these fail). rkt's
/// wildcard groups (`@rkt/default-whitelist`, `@docker/…`) are refused.
fn seccomp(name: &str, v: &Value) -> Result<Value, IsolatorError> {
    let calls = set(name, v)?;
    if let Some(group) = calls.iter().find(|c| c.starts_with('@')) {
        return Err(bad(
            name,
            format!("syscall group {group} is not supported; list the syscalls"),
        ));
    }
    let errno = match v["errno"].as_str() {
        None | Some("") => 1,
        Some(e) => errno_number(e).ok_or_else(|| bad(name, format!("unknown errno {e}")))?,
    };
    let retain = name.ends_with("retain-set");
    let (default, listed) = if retain {
        ("SCMP_ACT_ERRNO", "SCMP_ACT_ALLOW")
    } else {
        ("SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO")
    };
    let mut rule = json!({"names": calls, "action": listed});
    if !retain {
        rule["errnoRet"] = json!(errno);
    }
    let mut profile = json!({"defaultAction": default, "syscalls": [rule]});
    if retain {
        profile["defaultErrnoRet"] = json!(errno);
    }
    Ok(profile)
}

fn errno_number(name: &str) -> Option<u32> {
    Some(match name {
        "EPERM" => 1,
        "ENOENT" => 2,
        "EIO" => 5,
        "EACCES" => 13,
        "EFAULT" => 14,
        "EINVAL" => 22,
        "ENOSYS" => 38,
        "ENOTSUP" | "EOPNOTSUPP" => 95,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(name: &str, value: Value) -> Isolator {
        Isolator {
            name: name.into(),
            value,
        }
    }

    #[test]
    fn quantities() {
        assert_eq!(quantity_milli("512Mi"), Some((512 * 1000) << 20));
        assert_eq!(quantity_milli("1G"), Some(1_000_000_000_000));
        assert_eq!(quantity_milli("500m"), Some(500));
        assert_eq!(quantity_milli("1.5"), Some(1500));
        assert_eq!(quantity_milli("2"), Some(2000));
        assert_eq!(quantity_milli("x"), None);
        assert_eq!(quantity_milli("5Q"), None);
    }

    #[test]
    fn resources_caps_and_seccomp() {
        let l = limits(
            &[
                iso("resource/memory", json!({"limit": "128Mi"})),
                iso("resource/cpu", json!({"limit": "500m"})),
                iso(
                    "os/linux/capabilities-retain-set",
                    json!({"set": ["CAP_NET_ADMIN", "chown"]}),
                ),
                iso(
                    "os/linux/seccomp-remove-set",
                    json!({"set": ["reboot"], "errno": "ENOSYS"}),
                ),
            ],
            true,
            true,
        )
        .unwrap();
        assert_eq!(l.memory_bytes, Some(128 << 20));
        assert_eq!(l.cpu_millis, Some(500));
        assert_eq!(l.caps_retained.unwrap(), ["CAP_NET_ADMIN", "CAP_CHOWN"]);
        let s = l.seccomp.unwrap();
        assert_eq!(s["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(s["syscalls"][0]["errnoRet"], 38);
        let oci: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(s).unwrap();
        assert_eq!(
            oci.syscalls().as_ref().unwrap()[0].names(),
            &vec!["reboot".to_string()]
        );
        let retain = limits(
            &[iso(
                "os/linux/seccomp-retain-set",
                json!({"set": ["read", "write"]}),
            )],
            true,
            true,
        )
        .unwrap();
        let oci: oci_spec::runtime::LinuxSeccomp =
            serde_json::from_value(retain.seccomp.unwrap()).unwrap();
        assert_eq!(oci.default_errno_ret(), Some(1));
    }

    #[test]
    fn disabled_unknown_and_bad_isolators() {
        let caps = [iso(
            "os/linux/capabilities-remove-set",
            json!({"set": ["CAP_KILL"]}),
        )];
        assert!(limits(&caps, false, true).unwrap().caps_removed.is_empty());
        let e = limits(&[iso("resource/network-bandwidth", json!({}))], true, true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "isolator resource/network-bandwidth is not supported by hull's stage1"
        );
        let e = limits(
            &[iso("resource/memory", json!({"limit": "lots"}))],
            true,
            true,
        )
        .unwrap_err();
        assert!(matches!(e, IsolatorError::Bad { .. }));
        let group = [iso(
            "os/linux/seccomp-retain-set",
            json!({"set": ["@rkt/default-whitelist"]}),
        )];
        assert!(limits(&group, true, true).is_err());
        assert!(limits(&group, true, false).unwrap().seccomp.is_none());
    }
}
