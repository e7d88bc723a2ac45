//! `hull features`: what this runtime supports, as the runtime-spec
//! "features" JSON (`runc features`), indented by four spaces like runc's.
//! It lists what hull applies today, not what it merely accepts: no hooks
//! are run and there is no seccomp, AppArmor or SELinux yet, and the
//! container's cgroups are cgroup v2 inside the guest.

use serde_json::{json, Value};

use runtime::state::OCI_VERSION;

pub const USAGE: &str = "usage: hull features";

/// Mount options the guest agent turns into mount flags or propagation.
pub const MOUNT_OPTIONS: [&str; 29] = [
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "norelatime",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "ro",
    "rw",
    "shared",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "unbindable",
];

/// Namespaces the agent creates for a container, by their OCI names.
pub const NAMESPACES: [&str; 7] = ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"];

/// Capabilities 0 ..= CAP_CHECKPOINT_RESTORE (40), which the agent knows.
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

pub fn main(args: &[String]) -> anyhow::Result<i32> {
    if !args.is_empty() {
        anyhow::bail!("\"features\" requires exactly 0 argument(s)");
    }
    println!("{}", render()?);
    Ok(0)
}

/// The features JSON, four-space indented.
pub fn render() -> anyhow::Result<String> {
    use serde::Serialize;
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    features().serialize(&mut serde_json::Serializer::with_formatter(&mut out, fmt))?;
    Ok(String::from_utf8(out)?)
}

pub fn features() -> Value {
    let off = json!({ "enabled": false });
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": [],
        "mountOptions": &MOUNT_OPTIONS[..],
        "linux": {
            "namespaces": &NAMESPACES[..],
            "capabilities": &CAPABILITIES[..],
            "cgroup": {
                "v1": false, "v2": true, "systemd": false, "systemdUser": false, "rdma": false
            },
            "seccomp": off,
            "apparmor": off,
            "selinux": off,
            "intelRdt": off,
            "mountExtensions": { "idmap": off }
        },
        "annotations": {
            "hull.version": env!("CARGO_PKG_VERSION"),
            "hull.sandbox": "microvm"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        let text = render().unwrap();
        assert!(text.starts_with("{\n    \""), "not four-space indented");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["ociVersionMin"], "1.0.0");
        assert_eq!(v["ociVersionMax"], OCI_VERSION);
        assert_eq!(v["hooks"], json!([]));
        assert!(v["mountOptions"]
            .as_array()
            .unwrap()
            .contains(&json!("rbind")));
        let linux = &v["linux"];
        assert_eq!(linux["namespaces"].as_array().unwrap().len(), 7);
        assert_eq!(linux["capabilities"][40], "CAP_CHECKPOINT_RESTORE");
        assert_eq!(linux["cgroup"]["v2"], true);
        assert_eq!(linux["seccomp"]["enabled"], false);
        assert!(v["annotations"].is_object());
    }

    #[test]
    fn no_duplicates() {
        let mut opts = MOUNT_OPTIONS.to_vec();
        opts.sort_unstable();
        opts.dedup();
        assert_eq!(opts.len(), MOUNT_OPTIONS.len());
        let mut caps = CAPABILITIES.to_vec();
        caps.sort_unstable();
        caps.dedup();
        assert_eq!(caps.len(), CAPABILITIES.len());
    }
}
