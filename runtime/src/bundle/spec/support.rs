//! What hull does with each field of `config.json`: applied (in the guest,
//! or on the host), logged (accepted, with a line saying why it has no
//! effect), or refused (the spec is rejected with an error naming the
//! field). Nothing is dropped silently: a field not in [`TABLE`] is refused.
//!
//! [`check`] walks the spec as `oci-spec` understood it, field by field
//! (maps such as `annotations` or `sysctl` count as one field), and looks
//! each up by its longest listed prefix. Empty values (`null`, `""`, `[]`,
//! `{}`, `false`), and zeros under `linux.resources` (Docker's way of
//! saying "unset"), are not settings and are skipped.

use serde_json::Value;

use super::Spec;

/// What hull does with one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Applied in the guest by the agent.
    Guest,
    /// Applied on the host by the runtime.
    Host,
    /// Accepted without effect, with a log line giving the reason.
    Logged(&'static str),
    /// Refused: creating the container fails, naming the field.
    Refused(&'static str),
}

const NO_LSM: &str = "the guest has no LSM: the VM is the security boundary";
const NO_BLOCK: &str = "the guest has no block devices (the rootfs is shared over virtio-fs)";
const NO_SWAP: &str = "the guest has no swap";
const V1_ONLY: &str = "a cgroup v1 setting; the guest has cgroup v2 only";
const NOT_LINUX: &str = "hull runs Linux containers";

/// Field prefixes and what hull does with them; the longest prefix of a
/// field decides.
pub const TABLE: &[(&str, Support)] = &[
    ("ociVersion", Support::Host),
    ("annotations", Support::Host),
    ("hooks", Support::Host),
    ("root.path", Support::Host),
    ("root.readonly", Support::Guest),
    ("hostname", Support::Guest),
    ("domainname", Support::Guest),
    ("mounts.destination", Support::Guest),
    ("mounts.type", Support::Guest),
    ("mounts.source", Support::Guest),
    ("mounts.options", Support::Guest),
    (
        "mounts.uidMappings",
        Support::Refused("id-mapped mounts are not supported"),
    ),
    (
        "mounts.gidMappings",
        Support::Refused("id-mapped mounts are not supported"),
    ),
    ("process.terminal", Support::Guest),
    ("process.consoleSize", Support::Guest),
    ("process.user.uid", Support::Guest),
    ("process.user.gid", Support::Guest),
    ("process.user.umask", Support::Guest),
    ("process.user.additionalGids", Support::Guest),
    ("process.user.username", Support::Refused(NOT_LINUX)),
    ("process.commandLine", Support::Refused(NOT_LINUX)),
    ("process.args", Support::Guest),
    ("process.env", Support::Guest),
    ("process.cwd", Support::Guest),
    ("process.capabilities", Support::Guest),
    ("process.rlimits", Support::Guest),
    ("process.noNewPrivileges", Support::Guest),
    ("process.oomScoreAdj", Support::Guest),
    ("process.apparmorProfile", Support::Logged(NO_LSM)),
    ("process.selinuxLabel", Support::Logged(NO_LSM)),
    ("process.ioPriority", Support::Refused(NO_BLOCK)),
    ("process.scheduler", Support::Guest),
    ("process.execCPUAffinity", Support::Guest),
    ("linux.namespaces", Support::Guest),
    ("linux.uidMappings", Support::Guest),
    ("linux.gidMappings", Support::Guest),
    ("linux.timeOffsets", Support::Guest),
    ("linux.devices", Support::Guest),
    ("linux.sysctl", Support::Guest),
    ("linux.cgroupsPath", Support::Host),
    ("linux.rootfsPropagation", Support::Guest),
    ("linux.maskedPaths", Support::Guest),
    ("linux.readonlyPaths", Support::Guest),
    ("linux.mountLabel", Support::Logged(NO_LSM)),
    ("linux.seccomp", Support::Guest),
    ("linux.personality", Support::Guest),
    (
        "linux.personality.flags",
        Support::Refused("no personality flags are defined by the runtime spec"),
    ),
    ("linux.resources.devices", Support::Guest),
    ("linux.resources.memory.limit", Support::Guest),
    ("linux.resources.memory.reservation", Support::Guest),
    ("linux.resources.memory.swap", Support::Logged(NO_SWAP)),
    (
        "linux.resources.memory.swappiness",
        Support::Logged(NO_SWAP),
    ),
    (
        "linux.resources.memory.kernel",
        Support::Logged("kernel memory limits are deprecated and ignored, as by runc"),
    ),
    (
        "linux.resources.memory.kernelTCP",
        Support::Logged("kernel memory limits are deprecated and ignored, as by runc"),
    ),
    (
        "linux.resources.memory.useHierarchy",
        Support::Logged(V1_ONLY),
    ),
    (
        "linux.resources.memory.disableOOMKiller",
        Support::Refused(V1_ONLY),
    ),
    (
        "linux.resources.memory.checkBeforeUpdate",
        Support::Logged("an update below the current usage is left to the guest kernel"),
    ),
    ("linux.resources.cpu.shares", Support::Guest),
    ("linux.resources.cpu.quota", Support::Guest),
    ("linux.resources.cpu.period", Support::Guest),
    ("linux.resources.cpu.cpus", Support::Host),
    (
        "linux.resources.cpu.mems",
        Support::Logged("the guest has one memory node"),
    ),
    ("linux.resources.pids.limit", Support::Guest),
    ("linux.resources.blockIO", Support::Refused(NO_BLOCK)),
    (
        "linux.resources.hugepageLimits",
        Support::Refused("the guest has no huge pages"),
    ),
    ("linux.resources.network", Support::Refused(V1_ONLY)),
    (
        "linux.resources.rdma",
        Support::Refused("the guest has no RDMA devices"),
    ),
    (
        "linux.resources.unified",
        Support::Refused("raw cgroup v2 files are not applied in the guest yet"),
    ),
    (
        "linux.intelRdt",
        Support::Refused("the guest has no Intel RDT (resctrl)"),
    ),
    (
        "linux.memoryPolicy",
        Support::Refused("the guest has one memory node"),
    ),
    (
        "linux.netDevices",
        Support::Refused("moving host network devices into the VM is not supported"),
    ),
    (
        "vm",
        Support::Refused("hull chooses its own VM (see /etc/hull/config.toml)"),
    ),
    ("windows", Support::Refused(NOT_LINUX)),
    ("solaris", Support::Refused(NOT_LINUX)),
    ("zos", Support::Refused(NOT_LINUX)),
];

/// Maps whose keys are data, not fields.
const MAPS: &[&str] = &[
    "annotations",
    "linux.sysctl",
    "linux.timeOffsets",
    "linux.resources.unified",
    "linux.resources.rdma",
    "linux.netDevices",
];

/// One field that is not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The field, e.g. `linux.intelRdt.closID` or `linux.namespaces[2].path`.
    pub field: String,
    pub reason: String,
}

/// Every field that is refused or only logged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub refused: Vec<Finding>,
    pub logged: Vec<Finding>,
}

impl Report {
    /// The refusal as one error message, naming each field.
    pub fn error(&self) -> Option<String> {
        if self.refused.is_empty() {
            return None;
        }
        let list: Vec<String> = self
            .refused
            .iter()
            .map(|f| format!("{}: {}", f.field, f.reason))
            .collect();
        Some(format!("unsupported in config.json: {}", list.join("; ")))
    }
}

/// What hull does with `field` (dotted, without array indices).
pub fn lookup(field: &str) -> Support {
    TABLE
        .iter()
        .filter(|(prefix, _)| {
            field == *prefix
                || field
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
        .max_by_key(|(prefix, _)| prefix.len())
        .map_or(Support::Refused("not supported by hull"), |(_, support)| {
            *support
        })
}

/// Checks every field of `spec`.
pub fn check(spec: &Spec) -> Report {
    let mut report = Report::default();
    let value = serde_json::to_value(spec).unwrap_or(Value::Null);
    let mut fields = Vec::new();
    collect(&value, "", "", &mut fields);
    for (key, shown) in fields {
        let finding = |reason: &str| Finding {
            field: shown.clone(),
            reason: reason.to_string(),
        };
        match lookup(&key) {
            Support::Guest | Support::Host => {}
            Support::Logged(r) => report.logged.push(finding(r)),
            Support::Refused(r) => report.refused.push(finding(r)),
        }
    }
    namespace_paths(spec, &mut report);
    host_network(spec, &mut report);
    mount_options(spec, &mut report);
    report
}

/// Why a spec without a network namespace (the host's network, as with
/// `--network host`) is refused.
pub const HOST_NETWORK: &str = "no network namespace means the host's network stack, which a container in a VM cannot share (its kernel is the guest's): give the container a network namespace (the engine's default or a user-defined network, or --network none), and publish ports for what the host must reach";

/// The container is to use the host's network (a namespace list without a
/// network namespace): refused (see [`HOST_NETWORK`]). A spec with no list
/// at all gets hull's default namespaces, in which the VM's own network
/// has loopback only.
fn host_network(spec: &Spec, report: &mut Report) {
    use oci_spec::runtime::LinuxNamespaceType as Ns;
    let Some(list) = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()) else {
        return;
    };
    if !list.iter().any(|ns| ns.typ() == Ns::Network) {
        report.refused.push(Finding {
            field: "linux.namespaces (network)".into(),
            reason: HOST_NETWORK.into(),
        });
    }
}

fn is_empty(v: &Value, key: &str) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(n) => key.starts_with("linux.resources.") && n.as_f64() == Some(0.0),
    }
}

/// What `hull update` changes in a running guest: the guest cgroup's
/// memory, cpu and pids settings.
pub const UPDATABLE: &[&str] = &[
    "linux.resources.memory.limit",
    "linux.resources.memory.reservation",
    "linux.resources.cpu.shares",
    "linux.resources.cpu.quota",
    "linux.resources.cpu.period",
    "linux.resources.pids.limit",
];

/// The set fields of a `linux.resources` object (as `hull update -r` reads
/// it) that `hull update` cannot change, by name (fields that are only
/// logged at create, such as swap, are accepted here too).
pub fn not_updatable(resources: &oci_spec::runtime::LinuxResources) -> Vec<String> {
    let value = serde_json::to_value(resources).unwrap_or(Value::Null);
    let mut fields = Vec::new();
    collect(&value, "linux.resources", "linux.resources", &mut fields);
    fields
        .into_iter()
        // What has no effect at create (swap, kernel memory) has none here.
        .filter(|(key, _)| {
            !UPDATABLE.contains(&key.as_str()) && !matches!(lookup(key), Support::Logged(_))
        })
        .map(|(_, shown)| shown)
        .collect()
}

/// Every set leaf under `v`, as (the field without array indices, for the
/// table; the field with them, to name it). An empty `key` is the top.
fn collect(v: &Value, key: &str, shown: &str, out: &mut Vec<(String, String)>) {
    if is_empty(v, key) {
        return;
    }
    match v {
        Value::Object(o) if !MAPS.contains(&key) => {
            for (k, sub) in o {
                let (key, shown) = if key.is_empty() {
                    (k.clone(), k.clone())
                } else {
                    (format!("{key}.{k}"), format!("{shown}.{k}"))
                };
                collect(sub, &key, &shown, out);
            }
        }
        Value::Array(a) if a.iter().all(Value::is_object) => {
            for (i, sub) in a.iter().enumerate() {
                collect(sub, key, &format!("{shown}[{i}]"), out);
            }
        }
        _ => out.push((key.to_string(), shown.to_string())),
    }
}

/// Mount options hull does not implement (crun's extensions): refused by
/// name, never dropped.
const UNSUPPORTED_MOUNT_OPTIONS: &[(&str, &str)] = &[
    ("idmap", "id-mapped mounts are not supported"),
    ("ridmap", "id-mapped mounts are not supported"),
    (
        "copy-symlink",
        "copying a symlink's target is not supported",
    ),
];

fn mount_options(spec: &Spec, report: &mut Report) {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        for (j, opt) in m.options().iter().flatten().enumerate() {
            if let Some((_, why)) = UNSUPPORTED_MOUNT_OPTIONS.iter().find(|(o, _)| o == opt) {
                report.refused.push(Finding {
                    field: format!("mounts[{i}].options[{j}] ({opt})"),
                    reason: (*why).into(),
                });
            }
        }
    }
}

/// A namespace `path` names a namespace of another container (a host
/// process). The network one is entered on the host; a path into a
/// process, `/proc/<pid>/ns/<type>`, makes the container a member of that
/// process's pod, which `create` resolves (and refuses when the process is
/// no hull container's). Any other path cannot be joined from a VM.
fn namespace_paths(spec: &Spec, report: &mut Report) {
    use oci_spec::runtime::LinuxNamespaceType as Ns;
    let list = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
    for (i, ns) in list.into_iter().flatten().enumerate() {
        let has_path = ns
            .path()
            .as_ref()
            .is_some_and(|p| !p.as_os_str().is_empty());
        let into_process = ns
            .path()
            .as_deref()
            .and_then(crate::bundle::pod::proc_ns_pid)
            .is_some();
        if has_path && ns.typ() != Ns::Network && !into_process {
            report.refused.push(Finding {
                field: format!("linux.namespaces[{i}].path"),
                reason: format!(
                    "a {} namespace can be joined only as /proc/<pid>/ns/<type> of another hull container's process (its pod's VM)",
                    ns.typ()
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests;
