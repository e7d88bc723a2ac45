//! `linux.resources` as hull's host side uses it: the memory limit, CPU
//! bandwidth, shares and set, and pids limit, taken from `oci-spec`'s
//! model. `host::resources` turns these into the VM's size and the guest
//! cgroup's limits. The other fields go to the guest in the spec itself
//! (`devices`) or are refused by [`super::support`].

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinuxResources {
    pub memory: Option<Memory>,
    pub cpu: Option<Cpu>,
    pub pids: Option<Pids>,
}

/// `memory`, in bytes; `-1` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    pub limit: Option<i64>,
    pub reservation: Option<i64>,
    pub swap: Option<i64>,
}

/// `cpu`: CFS bandwidth (`quota` per `period`, microseconds), relative
/// `shares`, and the cpuset (`cpus`, `mems`, list syntax like `0-3,7`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cpu {
    pub shares: Option<u64>,
    pub quota: Option<i64>,
    pub period: Option<u64>,
    pub cpus: Option<String>,
    pub mems: Option<String>,
}

/// `pids`: `limit` ≤ 0 means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pids {
    pub limit: Option<i64>,
}

impl From<&oci_spec::runtime::LinuxResources> for LinuxResources {
    fn from(r: &oci_spec::runtime::LinuxResources) -> Self {
        LinuxResources {
            memory: r.memory().as_ref().map(|m| Memory {
                limit: m.limit(),
                reservation: m.reservation(),
                swap: m.swap(),
            }),
            cpu: r.cpu().as_ref().map(|c| Cpu {
                shares: c.shares(),
                quota: c.quota(),
                period: c.period(),
                cpus: c.cpus().clone(),
                mems: c.mems().clone(),
            }),
            pids: r.pids().as_ref().map(|p| Pids {
                limit: Some(p.limit()),
            }),
        }
    }
}

/// Parses a `linux.resources` object.
pub fn parse(json: &str) -> Result<LinuxResources, serde_json::Error> {
    let r: oci_spec::runtime::LinuxResources = serde_json::from_str(json)?;
    Ok(LinuxResources::from(&r))
}

/// Parses a `linux.resources` object as `hull update -r` reads it: a field
/// that `update` cannot change in a running guest is an error naming it.
/// The device rules may come along unchanged (containerd's CRI plugin sends
/// the container's whole resources): equal to those of `current`, the
/// container's, they are what it has.
pub fn parse_update(
    json: &str,
    current: Option<&oci_spec::runtime::LinuxResources>,
) -> Result<LinuxResources, String> {
    let mut r: oci_spec::runtime::LinuxResources =
        serde_json::from_str(json).map_err(|e| format!("invalid resources JSON: {e}"))?;
    let unchanged = current.and_then(|c| c.devices().as_ref());
    if r.devices().is_some() && r.devices().as_ref() == unchanged {
        r.set_devices(None);
    }
    let refused = super::support::not_updatable(&r);
    if !refused.is_empty() {
        return Err(format!(
            "hull update cannot change {} in a running VM (it changes memory limit and reservation, cpu shares, quota and period, and the pids limit)",
            refused.join(", ")
        ));
    }
    Ok(LinuxResources::from(&r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_docker_style_resources_object_parses() {
        let r: LinuxResources = parse(
            r#"{
                "devices": [{"allow": false, "access": "rwm"}],
                "memory": {"limit": 536870912, "swap": 1073741824, "kernel": -1},
                "cpu": {"shares": 512, "quota": 150000, "period": 100000,
                        "cpus": "0-3", "mems": "0", "realtimeRuntime": 0},
                "pids": {"limit": 100},
                "blockIO": {"weight": 10},
                "unified": {"memory.high": "1G"}
            }"#,
        )
        .unwrap();
        assert_eq!(r.memory.as_ref().unwrap().limit, Some(512 << 20));
        let cpu = r.cpu.unwrap();
        assert_eq!(
            (cpu.shares, cpu.quota, cpu.period),
            (Some(512), Some(150_000), Some(100_000))
        );
        assert_eq!(cpu.cpus.as_deref(), Some("0-3"));
        assert_eq!(r.pids.unwrap().limit, Some(100));
    }

    #[test]
    fn update_refuses_what_it_cannot_change_by_name() {
        let r = parse_update(r#"{"memory": {"limit": 1048576, "swap": 0}, "cpu": {"shares": 0}, "pids": {"limit": 5}}"#, None)
            .unwrap();
        assert_eq!(r.pids.unwrap().limit, Some(5));
        let e = parse_update(
            r#"{"devices": [{"allow": true, "access": "r"}], "cpu": {"cpus": "0-1"}}"#,
            None,
        )
        .unwrap_err();
        assert!(e.contains("linux.resources.devices[0].allow"), "{e}");
        assert!(e.contains("linux.resources.cpu.cpus"), "{e}");
        // The container's own device rules, sent along (containerd's CRI
        // plugin does): what it has, not a change.
        let current: oci_spec::runtime::LinuxResources =
            serde_json::from_str(r#"{"devices": [{"allow": false, "access": "rwm"}]}"#).unwrap();
        let same =
            r#"{"devices": [{"allow": false, "access": "rwm"}], "memory": {"limit": 1048576}}"#;
        assert!(parse_update(same, Some(&current)).is_ok());
        let other = r#"{"devices": [{"allow": true, "access": "rwm"}]}"#;
        assert!(parse_update(other, Some(&current)).is_err());
    }

    #[test]
    fn empty_and_null_fields_parse() {
        let r: LinuxResources =
            parse(r#"{"memory": {"limit": null}, "cpu": {}, "pids": null}"#).unwrap();
        assert_eq!(r.memory.unwrap().limit, None);
        assert_eq!(r.cpu.unwrap(), Cpu::default());
        assert!(r.pids.is_none());
    }
}
