//! `hull features`: what this runtime supports, as the runtime-spec
//! "features" JSON (`runc features`), indented by four spaces like runc's.
//! It lists what hull applies today, not what it merely accepts: no hooks
//! are run and there is no seccomp, AppArmor or SELinux yet, and the
//! container's cgroups are cgroup v2 inside the guest.
//!
//! `annotations` holds implementation strings, as runc's and crun's do:
//! hull's version, and each `io.hull.*` annotation a container may set with
//! what it takes and its built-in default; the ones that choose what the
//! host boots are also `potentiallyUnsafeConfigAnnotations`.

use serde_json::{json, Value};

use runtime::config::{annotations, value_text, Config};
use runtime::state::OCI_VERSION;

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
/// (`network` is the VM itself; user namespaces are refused in the guest.)
pub const NAMESPACES: [&str; 6] = ["cgroup", "ipc", "mount", "network", "pid", "uts"];

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
        assert_eq!(v["hooks"], json!([]));
        assert!(v["mountOptions"]
            .as_array()
            .unwrap()
            .contains(&json!("rbind")));
        let linux = &v["linux"];
        assert_eq!(linux["namespaces"].as_array().unwrap().len(), 6);
        assert_eq!(linux["capabilities"][40], "CAP_CHECKPOINT_RESTORE");
        assert_eq!(linux["cgroup"]["v2"], true);
        assert_eq!(linux["seccomp"]["enabled"], false);
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
