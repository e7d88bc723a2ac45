//! `hull features`: what this runtime supports, as the runtime-spec
//! "features" JSON (`runc features`), indented by four spaces like runc's.
//! It lists what hull applies, not what it merely accepts: hooks run on the
//! host, seccomp profiles are compiled with libseccomp and enforced in the
//! guest, the container's cgroups are cgroup v2 inside the guest, and there
//! is no AppArmor or SELinux (the guest has no LSM: `apparmorProfile`,
//! `selinuxLabel` and `mountLabel` are accepted with a log line, as the
//! `hull.lsm` annotation says).
//!
//! `annotations` holds implementation strings, as runc's and crun's do:
//! hull's version, and each `io.hull.*` annotation a container may set with
//! what it takes and its built-in default; the ones that choose what the
//! host boots are also `potentiallyUnsafeConfigAnnotations`.

use serde_json::{json, Value};

use runtime::config::{annotations, value_text, Config};
use runtime::state::OCI_VERSION;

/// Mount options the guest agent turns into mount flags, recursive
/// attributes (`mount_setattr`) or propagation: runc's table.
pub const MOUNT_OPTIONS: [&str; 61] = [
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "notmpcopyup",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// Namespaces the agent creates for a container, by their OCI names
/// (`network` is the VM itself).
pub const NAMESPACES: [&str; 8] = [
    "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
];

/// Hooks, all run on the host.
pub const HOOKS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Capabilities the agent knows, by number.
pub use agent_protocol::container::CAPABILITIES;

pub fn main(_args: &liboci_cli::Features) -> anyhow::Result<i32> {
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

/// The `annotations` map: hull's own strings, then one entry per
/// `io.hull.*` annotation: `<values>; <what>; default <built-in value>`.
pub fn annotation_strings() -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    map.insert("hull.version".into(), env!("CARGO_PKG_VERSION").into());
    map.insert("hull.sandbox".into(), "microvm".into());
    map.insert(
        "hull.lsm".into(),
        "none in the guest: process.apparmorProfile, process.selinuxLabel and linux.mountLabel are accepted and logged; the VM is the boundary".into(),
    );
    let defaults = Config::default();
    for (name, setting) in annotations::known() {
        let text = format!(
            "{}; {}; default {}",
            setting.kind.describe(),
            setting.about,
            value_text(&defaults, setting.key)
        );
        map.insert(name, text.into());
    }
    map
}

pub fn features() -> Value {
    let off = json!({ "enabled": false });
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": &HOOKS[..],
        "mountOptions": &MOUNT_OPTIONS[..],
        "linux": {
            "namespaces": &NAMESPACES[..],
            "capabilities": &CAPABILITIES[..],
            "cgroup": {
                "v1": false, "v2": true, "systemd": false, "systemdUser": false, "rdma": false
            },
            "seccomp": {
                "enabled": true,
                "actions": agent_protocol::seccomp::ACTIONS,
                "operators": agent_protocol::seccomp::OPERATORS,
                "archs": agent_protocol::seccomp::ARCHITECTURES,
                "knownFlags": agent_protocol::seccomp::KNOWN_FLAGS,
                "supportedFlags": agent_protocol::seccomp::SUPPORTED_FLAGS
            },
            "apparmor": off,
            "selinux": off,
            "intelRdt": off,
            "mountExtensions": { "idmap": off }
        },
        "annotations": annotation_strings(),
        "potentiallyUnsafeConfigAnnotations": annotations::potentially_unsafe()
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
        assert_eq!(v["hooks"].as_array().unwrap().len(), 6);
        assert!(v["mountOptions"]
            .as_array()
            .unwrap()
            .contains(&json!("rbind")));
        let linux = &v["linux"];
        assert_eq!(linux["namespaces"].as_array().unwrap().len(), 8);
        assert_eq!(linux["capabilities"][40], "CAP_CHECKPOINT_RESTORE");
        assert_eq!(linux["cgroup"]["v2"], true);
        assert_eq!(linux["seccomp"]["enabled"], true);
        assert!(linux["seccomp"]["actions"]
            .as_array()
            .unwrap()
            .contains(&json!("SCMP_ACT_ERRNO")));
        assert_eq!(linux["apparmor"]["enabled"], false);
        assert_eq!(v["annotations"]["hull.sandbox"], "microvm");
        assert_eq!(
            v["annotations"]["io.hull.vm.memory_mib"],
            "integer 128-32768; guest RAM in MiB when the spec sets no memory limit; default 256"
        );
        assert_eq!(
            v["annotations"]["io.hull.vm.kernel"],
            "absolute path; guest kernel: an uncompressed vmlinux with a PVH note; default found at run time"
        );
        for (name, _) in annotations::known() {
            assert!(v["annotations"][&name].is_string(), "{name} not listed");
        }
        assert_eq!(
            v["potentiallyUnsafeConfigAnnotations"],
            json!(["io.hull.vm.kernel", "io.hull.vm.initramfs"])
        );
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
