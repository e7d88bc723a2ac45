//! The container's user namespace (`linux.uidMappings`/`gidMappings`).
//!
//! A process cannot map arbitrary ids into a user namespace it has just
//! entered; a process outside it, privileged in the parent namespace, must
//! write the maps. So the helper unshares the user namespace first, asks
//! the agent (its parent, root in the guest) over the sync socket to write
//! `/proc/<helper>/uid_map` and `gid_map` ([`write_maps`]), waits for the
//! agent's byte, becomes root of the new namespace and only then unshares
//! the other namespaces, which the new user namespace then owns — runc's
//! order.

use std::fs::File;
use std::io::Read;

use agent_protocol::wire;
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{Linux, LinuxIdMapping};

use super::{checked, InitError, Result};
use crate::container::sync::InitMsg;

/// Helper side: unshare the user namespace, have the maps written, become
/// root in it.
pub fn enter(sync: &mut File) -> Result<()> {
    checked(nix::sched::unshare(CloneFlags::CLONE_NEWUSER), || {
        "unshare the user namespace".into()
    })?;
    wire::send(sync, &InitMsg::IdMaps)
        .map_err(|e| InitError::Msg(format!("asking for the id maps: {e}")))?;
    let mut ack = [0u8; 1];
    match sync.read(&mut ack) {
        Ok(1) if ack[0] == 1 => {}
        _ => return Err(InitError::Msg("the id maps were not written".into())),
    }
    become_root()
}

/// Takes uid and gid 0 of the current user namespace (when 0 is mapped;
/// otherwise the ids stay as they are and the process keeps its
/// capabilities in the namespace it created).
pub fn become_root() -> Result<()> {
    let root_gid = Gid::from_raw(0);
    match nix::unistd::setresgid(root_gid, root_gid, root_gid) {
        Ok(()) | Err(Errno::EINVAL) => {}
        Err(errno) => {
            return Err(InitError::os(
                "setgid 0 in the user namespace",
                errno.into(),
            ))
        }
    }
    let root_uid = Uid::from_raw(0);
    match nix::unistd::setresuid(root_uid, root_uid, root_uid) {
        Ok(()) | Err(Errno::EINVAL) => {}
        Err(errno) => {
            return Err(InitError::os(
                "setuid 0 in the user namespace",
                errno.into(),
            ))
        }
    }
    Ok(())
}

/// The text of a `uid_map`/`gid_map` file.
pub fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Agent side: writes the spec's maps for process `pid`, which has just
/// unshared its user namespace. An empty map is an error: a user namespace
/// without mappings would leave the workload as the overflow id.
pub fn write_maps(pid: i32, linux: &Linux) -> std::result::Result<(), String> {
    let uid = linux.uid_mappings().as_deref().unwrap_or_default();
    let gid = linux.gid_mappings().as_deref().unwrap_or_default();
    if uid.is_empty() || gid.is_empty() {
        return Err("a user namespace needs linux.uidMappings and linux.gidMappings".into());
    }
    for (file, maps) in [("uid_map", uid), ("gid_map", gid)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, map_text(maps))
            .map_err(|e| format!("writing linux.{}: {path}: {e}", mapping_field(file)))?;
    }
    Ok(())
}

fn mapping_field(file: &str) -> &'static str {
    match file {
        "uid_map" => "uidMappings",
        _ => "gidMappings",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_written_as_the_kernel_reads_them() {
        let m: Vec<LinuxIdMapping> = serde_json::from_str(
            r#"[{"containerID": 0, "hostID": 100000, "size": 65536},
                {"containerID": 65536, "hostID": 1000, "size": 1}]"#,
        )
        .unwrap();
        assert_eq!(map_text(&m), "0 100000 65536\n65536 1000 1\n");
    }

    #[test]
    fn a_user_namespace_without_maps_is_refused() {
        let linux: Linux = serde_json::from_str(r#"{"uidMappings": []}"#).unwrap();
        assert!(write_maps(1, &linux).unwrap_err().contains("uidMappings"));
    }
}
