//! The parts of an OCI runtime spec (`config.json`) hull uses, as plain serde
//! structs. Unknown fields are ignored, so specs written for runc (with
//! seccomp, devices, …) load; what is not modelled here is not applied in the
//! guest yet. Hooks ([`hooks`]) and resources ([`resources`]) are validated
//! while parsing.

use std::collections::BTreeMap;

use serde::Deserialize;

pub mod hooks;
pub mod resources;

pub use hooks::{Hook, HookKind, Hooks};
pub use resources::LinuxResources;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    #[serde(default)]
    pub oci_version: Option<String>,
    #[serde(default)]
    pub process: Option<Process>,
    #[serde(default)]
    pub root: Option<Root>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    #[serde(default)]
    pub linux: Option<Linux>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub hooks: Option<Hooks>,
}

impl Spec {
    /// The hooks of one kind, in order (empty when the spec has none).
    pub fn hooks(&self, kind: HookKind) -> &[Hook] {
        self.hooks.as_ref().map_or(&[], |h| h.get(kind))
    }

    /// The path of the network namespace the container is to join, when
    /// `linux.namespaces` lists a `network` namespace with a `path`.
    pub fn network_namespace_path(&self) -> Option<&str> {
        self.linux.as_ref()?.namespace_path("network")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    #[serde(default)]
    pub terminal: bool,
    #[serde(default)]
    pub console_size: Option<ConsoleSize>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub user: User,
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    #[serde(default)]
    pub no_new_privileges: bool,
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct ConsoleSize {
    pub height: u16,
    pub width: u16,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
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

#[derive(Debug, Clone, Deserialize)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub hard: u64,
    pub soft: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
pub struct Root {
    pub path: String,
    #[serde(default)]
    pub readonly: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Mount {
    pub destination: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default, rename = "type")]
    pub fstype: Option<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

impl Mount {
    /// A bind mount: type `bind`, or `bind`/`rbind` among the options (the
    /// OCI rule; runc accepts either).
    pub fn is_bind(&self) -> bool {
        self.fstype.as_deref() == Some("bind")
            || self.options.iter().any(|o| o == "bind" || o == "rbind")
    }

    /// A recursive bind (`rbind`).
    pub fn is_recursive_bind(&self) -> bool {
        self.options.iter().any(|o| o == "rbind")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    /// `None` when the spec has no list (the guest then gets its defaults).
    #[serde(default)]
    pub namespaces: Option<Vec<LinuxNamespace>>,
    #[serde(default)]
    pub masked_paths: Vec<String>,
    #[serde(default)]
    pub readonly_paths: Vec<String>,
    #[serde(default)]
    pub sysctl: BTreeMap<String, String>,
    /// `linux.cgroupsPath`: a path (cgroupfs) or `slice:prefix:name`
    /// (with `--systemd-cgroup`).
    #[serde(default)]
    pub cgroups_path: Option<String>,
    #[serde(default)]
    pub resources: Option<LinuxResources>,
}

impl Linux {
    /// The `path` of the namespace of type `kind` (OCI name, e.g.
    /// `network`), when it is listed with a non-empty path.
    pub fn namespace_path(&self, kind: &str) -> Option<&str> {
        self.namespaces
            .as_deref()?
            .iter()
            .find(|ns| ns.kind == kind)?
            .path
            .as_deref()
            .filter(|p| !p.is_empty())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LinuxNamespace {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub path: Option<String>,
}

#[cfg(test)]
mod tests;
