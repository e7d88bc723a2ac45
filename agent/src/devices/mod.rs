//! OCI `linux.devices` and `linux.resources.devices` in the guest.
//!
//! Two halves, used at two places of container creation:
//! - [`create_nodes`] makes the device nodes of `linux.devices` in the
//!   container's rootfs, from the container's child in its new mount
//!   namespace, after the spec mounts (so on the `/dev` tmpfs) and before
//!   pivot_root. Paths are resolved with openat2 `RESOLVE_IN_ROOT`: the
//!   image's symlinks cannot make a node (or a parent directory) land
//!   outside the rootfs.
//! - [`compile`] turns `linux.resources.devices` into a
//!   `BPF_PROG_TYPE_CGROUP_DEVICE` program and [`attach`] loads it and
//!   attaches it to the container's cgroup (v2: the guest kernel has no v1
//!   devices controller), replacing the program an earlier call attached.
//!   Both, and the rules' semantics, are the `device-filter` crate's (the
//!   runtime filters its host process with it too).
//!
//! As runc does, attach the program once the container's child has built
//! its rootfs (runc sets cgroup resources at `procReady`): the child's
//! mknod calls run inside the container's cgroup, so an earlier program
//! without `m` for those nodes would refuse them.

mod nodes;

#[cfg(test)]
mod nodes_tests;

pub use device_filter::{attach, compile, with_runc_defaults, BpfInsn};
pub use nodes::create_nodes;

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    #[error("device {path}: {reason}")]
    InvalidDevice { path: PathBuf, reason: String },
    #[error("device {path}: a different file exists there ({found})")]
    Exists { path: PathBuf, found: String },
    #[error("device {path}: {what}: {source}")]
    Node {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
}

#[cfg(test)]
use device_filter::available_or_skip;
