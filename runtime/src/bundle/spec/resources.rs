//! `linux.resources`: the parts hull applies (memory limit, CPU bandwidth,
//! shares and set, pids limit). Every other field (`devices`, `blockIO`,
//! `hugepageLimits`, `network`, `rdma`, `unified`, …) is tolerated and
//! ignored. `host::resources` turns these into the VM's size and the guest
//! cgroup's limits.

use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxResources {
    #[serde(default)]
    pub memory: Option<Memory>,
    #[serde(default)]
    pub cpu: Option<Cpu>,
    #[serde(default)]
    pub pids: Option<Pids>,
}

/// `memory`, in bytes; `-1` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub reservation: Option<i64>,
    #[serde(default)]
    pub swap: Option<i64>,
}

/// `cpu`: CFS bandwidth (`quota` per `period`, microseconds), relative
/// `shares`, and the cpuset (`cpus`, `mems`, list syntax like `0-3,7`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    #[serde(default)]
    pub shares: Option<u64>,
    #[serde(default)]
    pub quota: Option<i64>,
    #[serde(default)]
    pub period: Option<u64>,
    #[serde(default)]
    pub cpus: Option<String>,
    #[serde(default)]
    pub mems: Option<String>,
}

/// `pids`: `limit` ≤ 0 means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Pids {
    #[serde(default)]
    pub limit: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_docker_style_resources_object_parses() {
        let r: LinuxResources = serde_json::from_str(
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
    fn empty_and_null_fields_parse() {
        let r: LinuxResources =
            serde_json::from_str(r#"{"memory": {"limit": null}, "cpu": {}, "pids": null}"#)
                .unwrap();
        assert_eq!(r.memory.unwrap().limit, None);
        assert_eq!(r.cpu.unwrap(), Cpu::default());
        assert!(r.pids.is_none());
    }
}
