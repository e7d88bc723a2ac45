//! What the agent and its container-init helper say to each other over the
//! helper's sync socket (fd [`SYNC_FD`] in the helper). Same framing as the
//! control channel.

use std::fs::File;
use std::io;

use agent_protocol::container::{ContainerConfig, LinuxNamespaceType, Process};
use serde::{Deserialize, Serialize};

/// The helper's sync socket.
pub const SYNC_FD: i32 = 3;
/// argv[1] that makes the agent binary run as the container-init helper.
pub const INIT_ARG: &str = "container-init";

/// Agent → helper: what to build.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitRequest {
    /// The container (for its init process); `None` for an exec.
    pub container: Option<ContainerConfig>,
    pub process: Process,
    /// The container's cgroup directory in the guest.
    pub cgroup: String,
    /// For an exec: the pid whose namespaces the process joins, and which.
    pub join: Option<(i32, Vec<LinuxNamespaceType>)>,
    /// For a pod's app container: the init of the sibling whose namespaces
    /// it joins, and which (it gets new ones of the other listed types).
    #[serde(default)]
    pub peer: Option<(i32, Vec<LinuxNamespaceType>)>,
    /// The container's seccomp filter, compiled by the agent; installed on
    /// the init and on every exec'd process, as runc does.
    #[serde(default)]
    pub seccomp: Option<crate::seccomp::Program>,
}

/// Helper → agent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InitMsg {
    /// The pid of the process that will exec the workload (guest pid).
    Pid {
        pid: i32,
    },
    /// The init's terminal, made by the helper (in the container's devpts):
    /// its master follows as one byte carrying the descriptor (SCM_RIGHTS).
    Console,
    /// The helper has unshared its user namespace: the agent writes its uid
    /// and gid maps, then sends one byte (1).
    IdMaps,
    /// Set up and waiting for the start byte.
    Created,
    Error {
        message: String,
    },
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(File, File)> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((File::from(read), File::from(write)))
}
