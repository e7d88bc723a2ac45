//! Container state on the host: one directory per container under the
//! state root (`--root`, default `/run/hull`), claimed by
//! [`StateDir`](crate::sandbox::state_dir::StateDir), holding `state.json`
//! ([`ContainerState`]) beside the sandbox's socket and console log.
//!
//! `state.json` is written atomically under an exclusive `flock` on
//! `state.lock` and read under a shared one ([`StateStore`]). A container
//! whose sandbox process is gone, or whose pid now belongs to another
//! process (the start time differs), is `stopped` whatever the file says
//! ([`ContainerState::current_status`]).

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub mod file;
pub mod owner;
pub mod proc;
mod remove;
pub mod status;
mod store;
pub mod time;

pub use remove::remove_state_dir;

pub use status::{BadTransition, ContainerStatus};
pub use store::{Listed, StateStore};

use crate::bundle::Bundle;

/// The state file in a container's directory.
pub const STATE_FILE: &str = "state.json";
/// The lock file guarding it.
pub const LOCK_FILE: &str = "state.lock";
/// The spec a container was created with (see [`StateStore::save_spec`]).
pub const SPEC_FILE: &str = "config.json";
/// The runtime-spec version hull implements (and reports when a bundle's
/// `config.json` names none).
pub const OCI_VERSION: &str = "1.2.0";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("invalid container id {0:?}: use 1 to 128 of [A-Za-z0-9_.-], not starting with a dot")]
    InvalidId(String),
    /// runc's wording: engines match on "does not exist".
    #[error("container does not exist")]
    NotExist(String),
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is malformed: {source}")]
    Malformed {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot list {path}: {source}")]
    List { path: PathBuf, source: io::Error },
    #[error("cannot read the start time of process {pid}: {source}")]
    Proc { pid: i32, source: io::Error },
    #[error(transparent)]
    Transition(#[from] BadTransition),
}

/// What hull records about one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    /// The `ociVersion` of the bundle's spec.
    pub oci_version: String,
    pub id: String,
    /// As recorded; see [`ContainerState::current_status`].
    pub status: ContainerStatus,
    /// The container's host process: the stand-in a detached sandbox
    /// started (see [`crate::process::standin`]), else the sandbox process
    /// itself (`hull run`).
    pub pid: i32,
    /// The bundle directory, absolute.
    pub bundle: PathBuf,
    /// The root file system on the host, absolute.
    pub rootfs: PathBuf,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339, UTC.
    pub created: String,
    /// Not part of the OCI state.
    pub hull: Private,
}

/// hull's own fields of `state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Private {
    /// Start time of [`ContainerState::pid`] (`/proc/<pid>/stat` field 22;
    /// 0 in a state written before the stand-in: its pid counts as gone).
    #[serde(default)]
    pub pid_start_time: u64,
    /// The sandbox process (it owns the VM) and its start time, when it is
    /// not `pid` (0 when it is).
    #[serde(default)]
    pub sandbox_pid: i32,
    #[serde(default)]
    pub sandbox_start_time: u64,
    /// The host side of the sandbox VM's hybrid vsock.
    pub vsock_socket: PathBuf,
    /// hull-vmm's pid and start time, once it runs (0 before).
    #[serde(default)]
    pub vmm_pid: i32,
    #[serde(default)]
    pub vmm_start_time: u64,
    /// The guest's memory, MiB (0: not recorded).
    #[serde(default)]
    pub mem_mib: u32,
    /// The guest's vCPUs (0: not recorded).
    #[serde(default)]
    pub cpus: u32,
    /// Host cgroup directories the sandbox process joined and created
    /// (`delete` removes them).
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
    /// The interfaces of the container's network namespace the sandbox
    /// wired to its VM (`delete` removes what a killed sandbox left on
    /// them; its taps die with it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wired_links: Vec<String>,
    /// The tap of the VM's reserved NIC, while no interface is joined to
    /// it (`start` joins one that came after `create`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_nic: Option<String>,
    /// Set by `hull run` (foreground): no other command may start it.
    #[serde(default)]
    pub foreground: bool,
    /// The pod socket of the VM's owner (see `sandbox::pod_socket`): set
    /// for an owner once it listens, copied by its members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_socket: Option<PathBuf>,
    /// A pod's app container: the id of the sandbox container whose VM it
    /// joined (`delete` leaves that VM alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_sandbox: Option<String>,
}

impl ContainerState {
    /// A new record, `creating`, for the container `id` of `bundle` whose
    /// sandbox is process `pid`, created now.
    pub fn new(
        id: &str,
        bundle: &Bundle,
        pid: i32,
        vsock_socket: PathBuf,
    ) -> Result<Self, StateError> {
        let stat = proc::ProcStat::read(pid)
            .and_then(|s| s.ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH)))
            .map_err(|source| StateError::Proc { pid, source })?;
        Ok(Self {
            oci_version: Some(bundle.spec.version())
                .filter(|v| !v.is_empty())
                .cloned()
                .unwrap_or_else(|| OCI_VERSION.into()),
            id: id.into(),
            status: ContainerStatus::Creating,
            pid,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            annotations: crate::bundle::spec::annotations(&bundle.spec),
            created: time::rfc3339_nanos(std::time::SystemTime::now()),
            hull: Private {
                pid_start_time: stat.start_time,
                vsock_socket,
                ..Private::default()
            },
        })
    }

    /// The status now: `stopped` once the sandbox process has exited or
    /// its pid was reused, the recorded status otherwise.
    pub fn current_status(&self) -> ContainerStatus {
        if self.status == ContainerStatus::Stopped
            || !proc::is_alive(self.pid, self.hull.pid_start_time)
        {
            ContainerStatus::Stopped
        } else {
            self.status
        }
    }

    /// The OCI view, as `runc state` prints it (pid 0 once stopped).
    pub fn oci(&self, owner: String) -> OciState {
        let status = self.current_status();
        OciState {
            oci_version: self.oci_version.clone(),
            id: self.id.clone(),
            pid: if status == ContainerStatus::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner,
            annotations: self.annotations.clone(),
        }
    }
}

/// What `hull state` and `hull list --format json` print, field for field
/// runc's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: ContainerStatus,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests;
