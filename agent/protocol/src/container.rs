//! The container description the host sends with [`crate::wire::Request::Create`]:
//! an OCI runtime spec already translated for the guest. Paths are guest
//! paths; the host has resolved everything that names a host object (the
//! rootfs and bind-mount sources are under the sandbox's virtio-fs share).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Longest container or exec id accepted.
pub const MAX_ID_LEN: usize = 128;

/// Everything the agent needs to build one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// The container's root, a guest path (under the virtio-fs share).
    pub rootfs: String,
    /// Mount the root file system read-only.
    #[serde(default)]
    pub readonly_rootfs: bool,
    /// The container's init process.
    pub process: Process,
    #[serde(default)]
    pub hostname: Option<String>,
    /// The spec's mounts, in order. `/proc`, `/dev`, `/dev/pts`, `/dev/shm`,
    /// `/dev/mqueue` and `/sys` are provided by the agent when the spec does
    /// not list them.
    #[serde(default)]
    pub mounts: Vec<Mount>,
    #[serde(default)]
    pub masked_paths: Vec<String>,
    #[serde(default)]
    pub readonly_paths: Vec<String>,
    #[serde(default)]
    pub sysctl: BTreeMap<String, String>,
    /// The namespaces the container gets (a mount namespace always).
    /// Without `pid`, its processes live in the guest's pid namespace.
    #[serde(default = "default_namespaces")]
    pub namespaces: Vec<Namespace>,
    /// Limits applied to the container's guest cgroup before its init
    /// starts (as [`crate::wire::Request::Update`] would); `None`: none.
    #[serde(default)]
    pub resources: Option<Resources>,
}

/// Limits of a container's guest cgroup (cgroup v2 files). `None` leaves a
/// setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// `memory.max` in bytes; [`MEMORY_UNLIMITED`] writes `max`.
    #[serde(default)]
    pub memory_max: Option<u64>,
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

/// Linux namespaces, by their OCI names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Namespace {
    Pid,
    Mount,
    Uts,
    Ipc,
    Network,
    Cgroup,
    User,
}

/// What a spec without a namespace list gets: pid, mount, uts, ipc.
pub fn default_namespaces() -> Vec<Namespace> {
    vec![
        Namespace::Pid,
        Namespace::Mount,
        Namespace::Uts,
        Namespace::Ipc,
    ]
}

/// One process (the container's init or an exec'd one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    #[serde(default)]
    pub terminal: bool,
    /// Initial terminal size (rows, cols) when `terminal`.
    #[serde(default)]
    pub console_size: Option<WindowSize>,
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default = "root_dir")]
    pub cwd: String,
    #[serde(default)]
    pub user: User,
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    /// `None` means no capabilities at all (as runc does).
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    #[serde(default)]
    pub no_new_privileges: bool,
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
}

fn root_dir() -> String {
    "/".into()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub umask: Option<u32>,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
}

/// `type` is the OCI name, e.g. `RLIMIT_NOFILE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub hard: u64,
    pub soft: u64,
}

/// Capability names as in OCI (`CAP_CHOWN`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    #[serde(default)]
    pub bounding: Vec<String>,
    #[serde(default)]
    pub effective: Vec<String>,
    #[serde(default)]
    pub permitted: Vec<String>,
    #[serde(default)]
    pub inheritable: Vec<String>,
    #[serde(default)]
    pub ambient: Vec<String>,
}

/// A mount inside the container. `source` for bind mounts is a guest path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub destination: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default, rename = "type")]
    pub fstype: Option<String>,
    #[serde(default)]
    pub options: Vec<String>,
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
        let c: ContainerConfig =
            serde_json::from_str(r#"{"rootfs": "/r", "process": {"args": ["x"]}}"#).unwrap();
        assert_eq!(c.resources, None);
    }

    #[test]
    fn exit_status_shell_code() {
        assert_eq!(ExitStatus::Code(42).shell_code(), 42);
        assert_eq!(ExitStatus::Signal(9).shell_code(), 137);
    }

    #[test]
    fn minimal_process_takes_defaults() {
        let p: Process = serde_json::from_str(r#"{"args":["/bin/true"]}"#).unwrap();
        assert_eq!(p.cwd, "/");
        assert_eq!(p.user, User::default());
        assert!(!p.terminal);
        assert_eq!(
            Stream::for_process(false, true),
            [Stream::Stdin, Stream::Stdout, Stream::Stderr]
        );
        assert_eq!(Stream::for_process(true, true), [Stream::Tty]);
    }
}
