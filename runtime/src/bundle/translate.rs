//! OCI spec → [`ContainerConfig`]: the guest's view of the container, with the
//! rootfs and bind-mount sources under the sandbox's share.

use agent_protocol::container::{
    default_namespaces, Capabilities, ContainerConfig, Mount, Namespace, Process, Rlimit, User,
    WindowSize,
};
use agent_protocol::SHARE_MOUNT;

use super::{spec, Bundle};

/// Guest path of container `id`'s rootfs inside the share.
pub fn guest_rootfs(id: &str) -> String {
    format!("{SHARE_MOUNT}/{id}/rootfs")
}

/// Guest path of the source of mount `index` of container `id` inside the share.
pub fn guest_mount_source(id: &str, index: usize) -> String {
    format!("{SHARE_MOUNT}/{id}/mounts/{index}")
}

impl Bundle {
    /// The container description sent to the agent for container `id`.
    pub fn container_config(&self, id: &str) -> ContainerConfig {
        let spec = &self.spec;
        let linux = spec.linux.clone().unwrap_or_default();
        ContainerConfig {
            rootfs: guest_rootfs(id),
            readonly_rootfs: spec.root.as_ref().is_some_and(|r| r.readonly),
            process: process(spec.process.as_ref().cloned().unwrap_or_default()),
            hostname: spec.hostname.clone().filter(|h| !h.is_empty()),
            mounts: spec
                .mounts
                .iter()
                .enumerate()
                .map(|(index, m)| mount(id, index, m))
                .collect(),
            masked_paths: linux.masked_paths,
            readonly_paths: linux.readonly_paths,
            sysctl: linux.sysctl,
            namespaces: linux
                .namespaces
                .as_deref()
                .map_or_else(default_namespaces, namespaces),
            resources: linux
                .resources
                .as_ref()
                .map(crate::host::resources::agent_resources)
                .filter(|r| !r.is_empty()),
        }
    }
}

/// The spec's namespace list for the guest. Host namespace paths mean
/// nothing inside the VM (the network namespace is entered by the sandbox on
/// the host, and the guest's network is the container's); `time` has no
/// guest counterpart yet and is left out.
fn namespaces(list: &[spec::LinuxNamespace]) -> Vec<Namespace> {
    list.iter()
        .filter_map(|n| match n.kind.as_str() {
            "pid" => Some(Namespace::Pid),
            "mount" => Some(Namespace::Mount),
            "uts" => Some(Namespace::Uts),
            "ipc" => Some(Namespace::Ipc),
            // The VM is the container's network namespace (as in Kata): the
            // guest's interfaces are the container's.
            "network" => None,
            "cgroup" => Some(Namespace::Cgroup),
            "user" => Some(Namespace::User),
            _ => None,
        })
        .collect()
}

/// Translates a spec process (also used for `exec`'s process.json later).
pub fn process(p: spec::Process) -> Process {
    Process {
        terminal: p.terminal,
        console_size: p.console_size.map(|s| WindowSize {
            rows: s.height,
            cols: s.width,
        }),
        args: p.args,
        env: p.env,
        cwd: p.cwd.unwrap_or_else(|| "/".into()),
        user: User {
            uid: p.user.uid,
            gid: p.user.gid,
            umask: p.user.umask,
            additional_gids: p.user.additional_gids,
        },
        rlimits: p
            .rlimits
            .into_iter()
            .map(|r| Rlimit {
                kind: r.kind,
                hard: r.hard,
                soft: r.soft,
            })
            .collect(),
        capabilities: p.capabilities.map(|c| Capabilities {
            bounding: c.bounding,
            effective: c.effective,
            permitted: c.permitted,
            inheritable: c.inheritable,
            ambient: c.ambient,
        }),
        no_new_privileges: p.no_new_privileges,
        oom_score_adj: p.oom_score_adj,
    }
}

fn mount(id: &str, index: usize, m: &spec::Mount) -> Mount {
    let source = if m.is_bind() {
        Some(guest_mount_source(id, index))
    } else {
        m.source.clone()
    };
    Mount {
        destination: m.destination.clone(),
        source,
        fstype: m.fstype.clone(),
        options: m.options.clone(),
    }
}
