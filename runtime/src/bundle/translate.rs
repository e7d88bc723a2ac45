//! OCI spec → [`ContainerConfig`]: the spec itself, rewritten for the guest
//! (the rootfs and bind-mount sources under the sandbox's share, hooks
//! removed since they run on the host), with the guest cgroup's limits.

use std::path::PathBuf;

use agent_protocol::container::ContainerConfig;
use agent_protocol::SHARE_MOUNT;

use super::{is_bind, Bundle};

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
        let mut spec = self.spec.clone();
        if let Some(root) = spec.root_mut() {
            root.set_path(PathBuf::from(guest_rootfs(id)));
        }
        if let Some(mounts) = spec.mounts_mut() {
            for (index, m) in mounts.iter_mut().enumerate() {
                if is_bind(m) {
                    m.set_source(Some(PathBuf::from(guest_mount_source(id, index))));
                }
            }
        }
        spec.set_hooks(None);
        ContainerConfig {
            spec,
            resources: self
                .resources()
                .as_ref()
                .map(crate::host::resources::agent_resources)
                .filter(|r| !r.is_empty()),
        }
    }
}
