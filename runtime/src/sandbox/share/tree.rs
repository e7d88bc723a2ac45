//! A pod member's mounts, handed to the owner as detached mount trees.
//!
//! The owner's binds live in its own mount namespace, a slave of the
//! host's: a mount the engine makes later under a *private* host mount
//! (Podman's overlay driver keeps its `overlay` directory private) never
//! shows there, so the owner cannot bind the member's rootfs by path. The
//! member, in the host's namespace, clones each tree with `open_tree`
//! (`OPEN_TREE_CLONE`) and passes the file descriptors over the pod
//! socket; the owner attaches them in its namespace with `move_mount`.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::CWD;
use rustix::mount::{MoveMountFlags, OpenTreeFlags};

use super::ShareError;
use crate::bundle::Bundle;

/// A member's trees in the order the owner binds them: the rootfs, then
/// one per `bundle.host_binds` entry.
#[derive(Debug)]
pub struct Trees(Vec<OwnedFd>);

impl Trees {
    /// Clones the member's rootfs (recursively) and each bind source (as
    /// its bind asks). For a read-only rootfs, first makes the mount points
    /// the guest cannot make, as [`super::Share::add_container`] does.
    pub fn open(bundle: &Bundle) -> Result<Self, ShareError> {
        if bundle.readonly_root() {
            super::make_mount_points(bundle)?;
        }
        let mut trees = vec![clone(&bundle.rootfs, true)?];
        for b in &bundle.host_binds {
            trees.push(clone(&b.source, b.recursive)?);
        }
        Ok(Self(trees))
    }

    /// Takes the descriptors received for a bundle with `binds` host binds;
    /// `None` unless there is one per tree.
    pub fn received(fds: Vec<OwnedFd>, binds: usize) -> Option<Self> {
        (fds.len() == binds + 1).then_some(Self(fds))
    }

    pub fn fds(&self) -> &[OwnedFd] {
        &self.0
    }

    pub(super) fn into_iter(self) -> std::vec::IntoIter<OwnedFd> {
        self.0.into_iter()
    }
}

fn clone(path: &Path, recursive: bool) -> Result<OwnedFd, ShareError> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    rustix::mount::open_tree(CWD, path, flags).map_err(|errno| ShareError::Source {
        path: path.to_path_buf(),
        source: errno.into(),
    })
}

/// Attaches detached tree `tree` at `to` in this mount namespace.
pub(super) fn attach(tree: impl AsFd, to: &Path) -> std::io::Result<()> {
    Ok(rustix::mount::move_mount(
        tree,
        "",
        CWD,
        to,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?)
}
