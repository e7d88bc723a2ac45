//! The limits a pod's VM is sized for, from the sandbox container's
//! annotations: containerd's CRI plugin passes the pod's memory limit and
//! CFS quota and period as numbers; CRI-O passes the pod's CRI
//! `LinuxContainerResources` as JSON, and the pod's overhead (Kubernetes'
//! `RuntimeClass` overhead) the same way, which is added.

use oci_spec::runtime::Spec;
use serde::Deserialize;

use super::PodError;
use crate::bundle::spec::resources::{Cpu, LinuxResources, Memory};

/// containerd's CRI plugin, on a sandbox container: the pod's memory
/// limit (bytes) and CFS quota and period (microseconds), the sum of its
/// containers' limits.
pub const CRI_SANDBOX_MEMORY: &str = "io.kubernetes.cri.sandbox-memory";
pub const CRI_SANDBOX_CPU_QUOTA: &str = "io.kubernetes.cri.sandbox-cpu-quota";
pub const CRI_SANDBOX_CPU_PERIOD: &str = "io.kubernetes.cri.sandbox-cpu-period";

/// CRI-O, on a sandbox container: the pod's resources and its overhead,
/// JSON of CRI's `LinuxContainerResources`; the old names first, then the
/// ones CRI-O 1.30 moved to.
pub const CRIO_POD_RESOURCES: [&str; 2] = [
    "io.kubernetes.cri-o.PodLinuxResources",
    "pod-linux-resources.crio.io",
];
pub const CRIO_POD_OVERHEAD: [&str; 2] = [
    "io.kubernetes.cri-o.PodLinuxOverhead",
    "pod-linux-overhead.crio.io",
];

/// The part of CRI's `LinuxContainerResources` (as Go's `encoding/json`
/// writes the generated type: snake case, zero values left out) that sizes
/// a VM.
#[derive(Debug, Default, Deserialize)]
struct CriResources {
    #[serde(default)]
    cpu_period: i64,
    #[serde(default)]
    cpu_quota: i64,
    #[serde(default)]
    memory_limit_in_bytes: i64,
}

/// The limits the pod's VM is sized for; `None` when the annotations give
/// none (the sandbox's own limits size the VM then).
pub fn pod_resources(spec: &Spec) -> Result<Option<LinuxResources>, PodError> {
    let annotations = spec.annotations().as_ref();
    let get = |k: &str| annotations.and_then(|a| a.get(k));
    let number = |k: &'static str| -> Result<Option<i64>, PodError> {
        match get(k) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(|n| Some(n).filter(|n| *n > 0))
                .map_err(|_| PodError::BadNumber(k, v.clone())),
        }
    };
    let crio = |keys: [&'static str; 2]| -> Result<Option<CriResources>, PodError> {
        let Some((key, text)) = keys.iter().find_map(|k| get(k).map(|v| (*k, v))) else {
            return Ok(None);
        };
        match text.trim() {
            "" | "null" => Ok(None),
            json => serde_json::from_str(json)
                .map(Some)
                .map_err(|e| PodError::BadResources(key, e.to_string())),
        }
    };
    let (mut memory, mut quota, mut period) = (
        number(CRI_SANDBOX_MEMORY)?,
        number(CRI_SANDBOX_CPU_QUOTA)?,
        number(CRI_SANDBOX_CPU_PERIOD)?,
    );
    if memory.is_none() && quota.is_none() {
        if let Some(pod) = crio(CRIO_POD_RESOURCES)? {
            let overhead = crio(CRIO_POD_OVERHEAD)?.unwrap_or_default();
            (memory, quota, period) = crio_limits(&pod, &overhead);
        }
    }
    if memory.is_none() && quota.is_none() {
        return Ok(None);
    }
    Ok(Some(LinuxResources {
        memory: memory.map(|limit| Memory {
            limit: Some(limit),
            ..Memory::default()
        }),
        cpu: quota.map(|q| Cpu {
            quota: Some(q),
            period: period.map(|p| p.unsigned_abs()),
            ..Cpu::default()
        }),
        pids: None,
    }))
}

/// CFS period the kernel (and CRI) take when none is given, microseconds.
const DEFAULT_PERIOD_US: i64 = 100_000;

/// CRI-O's pod limits plus its overhead, where the pod has a limit (an
/// unlimited pod stays unlimited): memory, quota, period. The overhead's
/// quota is rescaled to the pod's period.
fn crio_limits(
    pod: &CriResources,
    overhead: &CriResources,
) -> (Option<i64>, Option<i64>, Option<i64>) {
    let positive = |n: i64| Some(n).filter(|n| *n > 0);
    let memory = positive(pod.memory_limit_in_bytes)
        .map(|m| m.saturating_add(overhead.memory_limit_in_bytes.max(0)));
    let period = positive(pod.cpu_period).unwrap_or(DEFAULT_PERIOD_US);
    let quota = positive(pod.cpu_quota).map(|q| {
        let extra = match positive(overhead.cpu_quota) {
            None => 0,
            Some(oq) => {
                let op = positive(overhead.cpu_period).unwrap_or(DEFAULT_PERIOD_US);
                // Whole microseconds of the pod's period, rounded up.
                let (oq, op, pp) = (oq.unsigned_abs(), op.unsigned_abs(), period.unsigned_abs());
                i64::try_from((u128::from(oq) * u128::from(pp)).div_ceil(u128::from(op)))
                    .unwrap_or(i64::MAX)
            }
        };
        q.saturating_add(extra)
    });
    (memory, quota, quota.map(|_| period))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(annotations: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2", "root": {"path": "rootfs"}, "annotations": annotations}))
        .unwrap()
    }

    #[test]
    fn containerds_annotations_size_the_pod() {
        let s = spec(serde_json::json!({
            "io.kubernetes.cri.container-type": "sandbox",
            CRI_SANDBOX_MEMORY: "268435456",
            CRI_SANDBOX_CPU_QUOTA: "150000",
            CRI_SANDBOX_CPU_PERIOD: "100000"}));
        let r = pod_resources(&s).unwrap().unwrap();
        assert_eq!(r.memory.unwrap().limit, Some(256 << 20));
        let cpu = r.cpu.unwrap();
        assert_eq!((cpu.quota, cpu.period), (Some(150000), Some(100000)));
        let s = spec(serde_json::json!({CRI_SANDBOX_MEMORY: "0"}));
        assert_eq!(pod_resources(&s), Ok(None));
        let s = spec(serde_json::json!({CRI_SANDBOX_MEMORY: "lots"}));
        assert!(matches!(pod_resources(&s), Err(PodError::BadNumber(..))));
    }

    #[test]
    fn crios_resources_plus_overhead_size_the_pod() {
        // As CRI-O writes them: Go's encoding/json of the CRI type.
        let s = spec(serde_json::json!({
            "io.kubernetes.cri-o.ContainerType": "sandbox",
            CRIO_POD_RESOURCES[0]:
                r#"{"cpu_period":100000,"cpu_quota":150000,"memory_limit_in_bytes":268435456}"#,
            CRIO_POD_OVERHEAD[0]:
                r#"{"cpu_period":50000,"cpu_quota":5000,"memory_limit_in_bytes":33554432}"#}));
        let r = pod_resources(&s).unwrap().unwrap();
        assert_eq!(r.memory.unwrap().limit, Some(288 << 20));
        let cpu = r.cpu.unwrap();
        assert_eq!((cpu.quota, cpu.period), (Some(160000), Some(100000)));
        // The new names; memory only; no overhead.
        let s = spec(serde_json::json!({
            CRIO_POD_RESOURCES[1]: r#"{"memory_limit_in_bytes":134217728,"oom_score_adj":0}"#}));
        let r = pod_resources(&s).unwrap().unwrap();
        assert_eq!(r.memory.unwrap().limit, Some(128 << 20));
        assert!(r.cpu.is_none());
    }

    #[test]
    fn crios_unlimited_or_broken_resources() {
        // An unlimited pod stays unlimited, whatever its overhead.
        let s = spec(serde_json::json!({
            CRIO_POD_RESOURCES[0]: "{}",
            CRIO_POD_OVERHEAD[0]: r#"{"memory_limit_in_bytes":33554432}"#}));
        assert_eq!(pod_resources(&s), Ok(None));
        let s = spec(serde_json::json!({CRIO_POD_RESOURCES[0]: "null"}));
        assert_eq!(pod_resources(&s), Ok(None));
        let s = spec(serde_json::json!({CRIO_POD_RESOURCES[0]: "{\"memory_limit_in_bytes\":"}));
        let e = pod_resources(&s).unwrap_err();
        assert!(matches!(e, PodError::BadResources(..)), "{e}");
        let s = spec(serde_json::json!({
            CRIO_POD_RESOURCES[0]: r#"{"memory_limit_in_bytes":"lots"}"#}));
        assert!(pod_resources(&s).is_err());
    }
}
