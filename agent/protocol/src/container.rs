//! The container description the host sends with [`crate::wire::Request::Create`]:
//! the OCI runtime spec itself (`oci-spec`'s types), rewritten for the guest.
//! Paths are guest paths; the host has resolved everything that names a host
//! object (the rootfs and bind-mount sources are under the sandbox's
//! virtio-fs share).

use std::path::Path;

pub use oci_spec::runtime::{Linux, LinuxNamespaceType, Process, Spec};
use serde::{Deserialize, Serialize};

/// Longest container or exec id accepted.
pub const MAX_ID_LEN: usize = 128;

/// Everything the agent needs to build one container: the container's OCI
/// runtime spec (`oci-spec`'s model, the one model of `config.json`), as the
/// host rewrote it for the guest, plus the cgroup values derived from its
/// `linux.resources`.
///
/// The host's rewrite: `root.path` is the rootfs's guest path (under the
/// virtio-fs share), each bind mount's `source` is its guest path, `hooks`
/// are removed (they run on the host), and every field the guest cannot
/// apply has been refused before this is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub spec: Spec,
    /// Limits applied to the container's guest cgroup before its init
    /// starts (as [`crate::wire::Request::Update`] would); `None`: none.
    #[serde(default)]
    pub resources: Option<Resources>,
}

impl ContainerConfig {
    /// The container's root, a guest path (`""` when the spec has none).
    pub fn rootfs(&self) -> &Path {
        self.spec
            .root()
            .as_ref()
            .map_or(Path::new(""), |r| r.path().as_path())
    }

    /// Whether the root file system is mounted read-only.
    pub fn readonly_rootfs(&self) -> bool {
        self.spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false)
    }

    /// The container's init process.
    pub fn process(&self) -> Option<&Process> {
        self.spec.process().as_ref()
    }

    /// The spec's `linux` section (an empty one when absent).
    pub fn linux(&self) -> Linux {
        self.spec.linux().clone().unwrap_or_else(empty_linux)
    }

    /// The namespaces the container gets, by type: those listed in
    /// `linux.namespaces`, or [`default_namespaces`] when the spec has no
    /// list. Types not listed are the guest's own (as with runc, the host's).
    pub fn namespaces(&self) -> Vec<LinuxNamespaceType> {
        match self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
        {
            Some(list) => list.iter().map(|n| n.typ()).collect(),
            None => default_namespaces(),
        }
    }
}

/// A namespace `path` naming another container of the same VM (a pod's
/// sandbox), as the host rewrites `/proc/<its pid>/ns/<type>`:
/// `/run/hull/containers/<id>`; the entry's type says which namespace.
pub const SIBLING_NS_DIR: &str = "/run/hull/containers/";

/// The namespace path naming container `id` (see [`SIBLING_NS_DIR`]).
pub fn sibling_ns_path(id: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{SIBLING_NS_DIR}{id}"))
}

impl ContainerConfig {
    /// The namespaces the container joins from a sibling container (its
    /// id and their types), from [`SIBLING_NS_DIR`] paths. Another path
    /// (but the network's, which the VM is) is an error, as are two
    /// siblings.
    pub fn joined(&self) -> Result<Option<(String, Vec<LinuxNamespaceType>)>, String> {
        let mut found: Option<(String, Vec<LinuxNamespaceType>)> = None;
        let list = self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref());
        for ns in list.into_iter().flatten() {
            let Some(path) = ns.path().as_ref().filter(|p| !p.as_os_str().is_empty()) else {
                continue;
            };
            if ns.typ() == LinuxNamespaceType::Network {
                continue;
            }
            let id = path
                .to_str()
                .and_then(|p| p.strip_prefix(SIBLING_NS_DIR))
                .filter(|id| valid_id(id))
                .ok_or_else(|| {
                    format!(
                        "namespace path {} names no container of this VM",
                        path.display()
                    )
                })?;
            match &mut found {
                Some((first, _)) if first != id => {
                    return Err(format!("namespaces of two containers ({first}, {id})"))
                }
                Some((_, types)) => types.push(ns.typ()),
                None => found = Some((id.to_string(), vec![ns.typ()])),
            }
        }
        Ok(found)
    }

    /// [`Self::namespaces`] without those joined from a sibling: the ones
    /// the container gets new.
    pub fn new_namespaces(&self) -> Vec<LinuxNamespaceType> {
        let joined = self
            .joined()
            .ok()
            .flatten()
            .map(|(_, t)| t)
            .unwrap_or_default();
        self.namespaces()
            .into_iter()
            .filter(|t| !joined.contains(t))
            .collect()
    }
}

/// A `linux` section with nothing in it (`oci-spec`'s `Default` fills in
/// runc's defaults, which a spec that omits them must not get).
pub fn empty_linux() -> Linux {
    let mut l = Linux::default();
    l.set_resources(None)
        .set_namespaces(None)
        .set_masked_paths(None)
        .set_readonly_paths(None);
    l
}

/// What a spec without a namespace list gets: pid, mount, uts, ipc.
pub fn default_namespaces() -> Vec<LinuxNamespaceType> {
    vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
    ]
}

/// Limits of a container's guest cgroup (cgroup v2 files). `None` leaves a
/// setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// `memory.max` in bytes; [`MEMORY_UNLIMITED`] writes `max`.
    #[serde(default)]
    pub memory_max: Option<u64>,
    /// `memory.low` in bytes (the spec's `memory.reservation`).
    #[serde(default)]
    pub memory_low: Option<u64>,
    /// The quota half of `cpu.max`, in µs per period; ≤ 0 writes `max`.
    #[serde(default)]
    pub cpu_quota: Option<i64>,
    /// The period half of `cpu.max`, in µs (1000 ..= 1_000_000).
    #[serde(default)]
    pub cpu_period: Option<u64>,
    /// `cpu.weight`, 1 ..= 10000 (see [`shares_to_weight`]).
    #[serde(default)]
    pub cpu_weight: Option<u64>,
    /// `pids.max`; ≤ 0 writes `max`.
    #[serde(default)]
    pub pids_max: Option<i64>,
}

impl Resources {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }
}

/// [`Resources::memory_max`] meaning no limit.
pub const MEMORY_UNLIMITED: u64 = u64::MAX;

/// cgroup v1 `cpu.shares` (2 ..= 262144, clamped) as a cgroup v2
/// `cpu.weight` (1 ..= 10000), the way runc converts them; 0 (unset) stays 0.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSize {
    pub rows: u16,
    pub cols: u16,
}

/// A process's stdio stream, each carried on its own vsock connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdin,
    Stdout,
    Stderr,
    /// The pty master, both ways (terminal mode: no stdin/stdout/stderr).
    Tty,
}

impl Stream {
    /// The streams a process has, given whether it uses a terminal and
    /// whether the host gives it stdin.
    pub fn for_process(terminal: bool, stdin: bool) -> Vec<Stream> {
        if terminal {
            vec![Stream::Tty]
        } else if stdin {
            vec![Stream::Stdin, Stream::Stdout, Stream::Stderr]
        } else {
            vec![Stream::Stdout, Stream::Stderr]
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl ExitStatus {
    /// The shell's convention: the code, or 128 + the signal number.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
        }
    }
}

/// Resource usage of a container's processes (its cgroup in the guest).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub cpu_usage_ns: u64,
    pub memory_usage_bytes: u64,
    pub memory_limit_bytes: u64,
    pub pids: u64,
}

/// Linux capability names by number, 0 ..= CAP_CHECKPOINT_RESTORE (40).
pub const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Whether an id is acceptable: 1..=[`MAX_ID_LEN`] of `[A-Za-z0-9_.-]`, not
/// starting with a dot.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_namespaces(list: serde_json::Value) -> ContainerConfig {
        let spec = serde_json::json!({"ociVersion": "1.0.2", "linux": {"namespaces": list}});
        ContainerConfig {
            spec: serde_json::from_value(spec).unwrap(),
            resources: None,
        }
    }

    #[test]
    fn a_sibling_path_is_a_join_and_anything_else_an_error() {
        use LinuxNamespaceType as Ns;
        let c = with_namespaces(serde_json::json!([
            {"type": "pid"},
            {"type": "ipc", "path": sibling_ns_path("pod")},
            {"type": "uts", "path": sibling_ns_path("pod")},
            {"type": "network", "path": "/var/run/netns/x"},
        ]));
        assert_eq!(c.joined(), Ok(Some(("pod".into(), vec![Ns::Ipc, Ns::Uts]))));
        assert_eq!(c.new_namespaces(), [Ns::Pid, Ns::Network]);
        let c = with_namespaces(serde_json::json!([{"type": "ipc", "path": "/proc/1/ns/ipc"}]));
        assert!(c.joined().is_err());
        let c = with_namespaces(serde_json::json!([
            {"type": "ipc", "path": sibling_ns_path("a")},
            {"type": "uts", "path": sibling_ns_path("b")},
        ]));
        assert!(c.joined().is_err());
        let c = with_namespaces(
            serde_json::json!([{"type": "ipc", "path": "/run/hull/containers/../x"}]),
        );
        assert!(c.joined().is_err());
    }

    #[test]
    fn ids_are_checked() {
        assert!(valid_id("abc-1_2.3"));
        assert!(!valid_id(""));
        assert!(!valid_id(".."));
        assert!(!valid_id("a/b"));
        assert!(!valid_id(&"x".repeat(MAX_ID_LEN + 1)));
    }

    #[test]
    fn shares_convert_to_weights_like_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        // Out-of-range shares are clamped first.
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(1 << 30), 10_000);
    }

    #[test]
    fn resources_default_to_unset_and_configs_without_them_parse() {
        let r: Resources = serde_json::from_str("{}").unwrap();
        assert!(r.is_empty());
        let r: Resources =
            serde_json::from_str(r#"{"memory_max": 1048576, "pids_max": -1}"#).unwrap();
        assert_eq!((r.memory_max, r.pids_max), (Some(1 << 20), Some(-1)));
        let c: ContainerConfig = serde_json::from_str(
            r#"{"spec": {"ociVersion": "1.2.0", "root": {"path": "/r"},
                "process": {"args": ["x"], "cwd": "/", "user": {"uid": 0, "gid": 0}}}}"#,
        )
        .unwrap();
        assert_eq!(c.resources, None);
        assert_eq!(c.rootfs(), Path::new("/r"));
        assert!(!c.readonly_rootfs());
        assert_eq!(c.namespaces(), default_namespaces());
    }

    #[test]
    fn exit_status_shell_code() {
        assert_eq!(ExitStatus::Code(42).shell_code(), 42);
        assert_eq!(ExitStatus::Signal(9).shell_code(), 137);
    }

    #[test]
    fn streams_of_a_process() {
        assert_eq!(
            Stream::for_process(false, true),
            [Stream::Stdin, Stream::Stdout, Stream::Stderr]
        );
        assert_eq!(Stream::for_process(true, true), [Stream::Tty]);
    }

    #[test]
    fn a_listed_namespace_set_replaces_the_default() {
        let c: ContainerConfig = serde_json::from_str(
            r#"{"spec": {"ociVersion": "1.2.0", "linux": {"namespaces": [{"type": "pid"}]}}}"#,
        )
        .unwrap();
        assert_eq!(c.namespaces(), [LinuxNamespaceType::Pid]);
    }
}
