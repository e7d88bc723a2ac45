//! Pods: which containers share one VM.
//!
//! A CRI service (containerd's CRI plugin, CRI-O) creates a pod's sandbox
//! ("pause") container first, then each app container, and says which is
//! which in annotations. Engines without those (Podman pods, Docker's
//! `--ipc/--pid/--network container:X`) give the app container namespace
//! paths into another container's host process, `/proc/<pid>/ns/<type>`;
//! hull's container pid is its stand-in, which is in the namespaces its
//! spec listed, so such a path names a hull container when a container's
//! `state.pid` is that pid. Anything else is a standalone container.

use std::path::Path;

use oci_spec::runtime::Spec;

mod sizing;

pub use sizing::{
    pod_resources, CRIO_POD_OVERHEAD, CRIO_POD_RESOURCES, CRI_SANDBOX_CPU_PERIOD,
    CRI_SANDBOX_CPU_QUOTA, CRI_SANDBOX_MEMORY,
};

/// containerd's CRI plugin: `sandbox` or `container`.
pub const CRI_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
/// containerd's CRI plugin: the sandbox container's id.
pub const CRI_SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
/// CRI-O: `sandbox` or `container`.
pub const CRIO_CONTAINER_TYPE: &str = "io.kubernetes.cri-o.ContainerType";
/// CRI-O: the sandbox container's id.
pub const CRIO_SANDBOX_ID: &str = "io.kubernetes.cri-o.SandboxID";

/// What the spec says about the container's pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodRole {
    /// Not in a pod, or a pod's sandbox container: it boots its own VM.
    Own,
    /// An app container of the pod whose sandbox is named here: it joins
    /// that VM.
    Member(SandboxRef),
}

/// How a member names its pod's sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxRef {
    /// By container id (CRI annotations).
    Id(String),
    /// By the host pid its namespace paths point into.
    HostPid(i32),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PodError {
    #[error("annotation {kind} is {value:?}: an app container needs {id} too")]
    NoSandboxId {
        kind: &'static str,
        value: String,
        id: &'static str,
    },
    #[error("annotation {0} is {1:?}: expected sandbox or container")]
    BadType(&'static str, String),
    #[error(
        "linux.namespaces name two different processes ({0} and {1}): a container can join one pod"
    )]
    TwoPods(i32, i32),
    #[error("annotation {0} is {1:?}: expected a number")]
    BadNumber(&'static str, String),
    #[error("annotation {0}: expected CRI LinuxContainerResources as JSON: {1}")]
    BadResources(&'static str, String),
}

/// The pid in `/proc/<pid>/ns/<type>`, if `path` is such a path.
pub fn proc_ns_pid(path: &Path) -> Option<i32> {
    let mut parts = path.to_str()?.strip_prefix("/proc/")?.split('/');
    let pid = parts.next()?.parse::<i32>().ok().filter(|p| *p > 0)?;
    (parts.next()? == "ns" && parts.next().is_some() && parts.next().is_none()).then_some(pid)
}

/// The role `spec` gives its container: by annotations first, else by
/// namespace paths into one host process.
pub fn role(spec: &Spec) -> Result<PodRole, PodError> {
    let annotations = spec.annotations().as_ref();
    let get = |k: &str| annotations.and_then(|a| a.get(k)).map(String::as_str);
    for (kind, id) in [
        (CRI_CONTAINER_TYPE, CRI_SANDBOX_ID),
        (CRIO_CONTAINER_TYPE, CRIO_SANDBOX_ID),
    ] {
        match get(kind) {
            None => continue,
            Some("sandbox") => return Ok(PodRole::Own),
            Some("container") => {
                return match get(id).filter(|v| !v.is_empty()) {
                    Some(sandbox) => Ok(PodRole::Member(SandboxRef::Id(sandbox.into()))),
                    None => Err(PodError::NoSandboxId {
                        kind,
                        value: "container".into(),
                        id,
                    }),
                }
            }
            Some(other) => return Err(PodError::BadType(kind, other.into())),
        }
    }
    let mut found: Option<i32> = None;
    let list = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
    for ns in list.into_iter().flatten() {
        let Some(pid) = ns.path().as_deref().and_then(proc_ns_pid) else {
            continue;
        };
        match found {
            Some(first) if first != pid => return Err(PodError::TwoPods(first, pid)),
            _ => found = Some(pid),
        }
    }
    Ok(found.map_or(PodRole::Own, |pid| {
        PodRole::Member(SandboxRef::HostPid(pid))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> Spec {
        let mut base = serde_json::json!({"ociVersion": "1.0.2", "root": {"path": "rootfs"}});
        if let (Some(b), Some(extra)) = (base.as_object_mut(), v.as_object()) {
            b.extend(extra.clone());
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn cri_annotations_name_the_sandbox() {
        let s = spec(serde_json::json!({"annotations": {CRI_CONTAINER_TYPE: "sandbox"}}));
        assert_eq!(role(&s), Ok(PodRole::Own));
        let s = spec(serde_json::json!({"annotations": {
            CRI_CONTAINER_TYPE: "container", CRI_SANDBOX_ID: "abc"}}));
        assert_eq!(role(&s), Ok(PodRole::Member(SandboxRef::Id("abc".into()))));
        let s = spec(serde_json::json!({"annotations": {
            CRIO_CONTAINER_TYPE: "container", CRIO_SANDBOX_ID: "def"}}));
        assert_eq!(role(&s), Ok(PodRole::Member(SandboxRef::Id("def".into()))));
        let s = spec(serde_json::json!({"annotations": {CRI_CONTAINER_TYPE: "container"}}));
        assert!(matches!(role(&s), Err(PodError::NoSandboxId { .. })));
        let s = spec(serde_json::json!({"annotations": {CRI_CONTAINER_TYPE: "vm"}}));
        assert!(matches!(role(&s), Err(PodError::BadType(..))));
    }

    #[test]
    fn proc_namespace_paths_name_a_process() {
        let s = spec(serde_json::json!({"linux": {"namespaces": [
            {"type": "network", "path": "/var/run/netns/cni-1"},
            {"type": "ipc", "path": "/proc/42/ns/ipc"},
            {"type": "uts", "path": "/proc/42/ns/uts"},
            {"type": "mount"},
        ]}}));
        assert_eq!(role(&s), Ok(PodRole::Member(SandboxRef::HostPid(42))));
        let s = spec(serde_json::json!({"linux": {"namespaces": [
            {"type": "ipc", "path": "/proc/42/ns/ipc"},
            {"type": "uts", "path": "/proc/43/ns/uts"},
        ]}}));
        assert_eq!(role(&s), Err(PodError::TwoPods(42, 43)));
        let s = spec(serde_json::json!({"linux": {"namespaces": [
            {"type": "network", "path": "/var/run/netns/x"}, {"type": "pid"}]}}));
        assert_eq!(role(&s), Ok(PodRole::Own));
        for bad in [
            "/proc/self/ns/ipc",
            "/proc/0/ns/ipc",
            "/proc/4/ns",
            "/proc/4/fd/ns/x",
        ] {
            assert_eq!(proc_ns_pid(Path::new(bad)), None, "{bad}");
        }
        assert_eq!(proc_ns_pid(Path::new("/proc/7/ns/pid")), Some(7));
    }
}
