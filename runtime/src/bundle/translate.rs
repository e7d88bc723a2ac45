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

/// Guest path of the source of mount `index` of container `id` inside the
/// share: `mounts/<index>/<name>`, where `name` is the source's own file
/// name, so the guest's mountinfo names the mount's root as a bind of the
/// source would (`…/etc` for a bind of `/etc`), as tools such as
/// runtime-tools compare.
pub fn guest_mount_source(id: &str, index: usize, name: &str) -> String {
    format!("{SHARE_MOUNT}/{id}/mounts/{index}/{name}")
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
                let bind = self.host_binds.iter().find(|b| b.index == index);
                if let (true, Some(bind)) = (is_bind(m), bind) {
                    let source = guest_mount_source(id, index, &bind.share_name());
                    m.set_source(Some(PathBuf::from(source)));
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
