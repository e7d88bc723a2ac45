//! The sandbox's virtio-fs share: one host directory holding, per container,
//! `<id>/rootfs` (a recursive bind of the bundle's rootfs) and
//! `<id>/mounts/<n>` (a bind of the source of the spec's mount `n`).
//!
//! The binds are made in a private mount namespace of the sandbox process
//! ([`enter_private_mount_namespace`]): they never show in the host's mount
//! table and vanish with the process however it ends. [`Share::teardown`]
//! (also run on drop) unmounts them and removes what was created, one entry
//! at a time and never recursively, so a bind that would not unmount can
//! never lead to deleting the user's files through it.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::bundle::Bundle;

pub mod tree;

pub use tree::Trees;

#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    #[error("cannot enter a private mount namespace: {0}")]
    Namespace(io::Error),
    #[error("{0}")]
    MountPoint(String),
    #[error("cannot create {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("bind mount source {path}: {source}")]
    Source { path: PathBuf, source: io::Error },
    #[error("cannot bind {from} onto {to}: {source}")]
    Bind {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
    #[error("teardown left {path} behind: {source}")]
    Teardown { path: PathBuf, source: io::Error },
}

/// Moves the calling thread (and every thread and process it starts
/// afterwards) into a new mount namespace in which `/` is recursively a
/// slave of the host's: the share's binds never reach the host, and what
/// the host mounts later still shows here (a pod member's rootfs, which
/// its engine mounts after this sandbox started, is bound from here).
/// Call it before starting other threads and before spawning the VMM,
/// which must see the share's binds.
pub fn enter_private_mount_namespace() -> Result<(), ShareError> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNS)
        .map_err(|errno| ShareError::Namespace(errno.into()))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|errno| ShareError::Namespace(errno.into()))
}

fn bind(from: &Path, to: &Path, recursive: bool) -> io::Result<()> {
    let rec = if recursive {
        MsFlags::MS_REC
    } else {
        MsFlags::empty()
    };
    // A bind ignores the type and data.
    Ok(nix::mount::mount(
        Some(from),
        to,
        None::<&str>,
        MsFlags::MS_BIND | rec,
        None::<&str>,
    )?)
}

/// Makes a bind read-only (and nosuid, nodev) on the host side. Only the
/// top mount of a recursive bind changes.
fn make_readonly(path: &Path) -> io::Result<()> {
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV;
    // A bind remount ignores the source, type and data.
    Ok(nix::mount::mount(
        None::<&str>,
        path,
        None::<&str>,
        flags,
        None::<&str>,
    )?)
}

fn unmount(path: &Path) -> io::Result<()> {
    Ok(nix::mount::umount2(path, MntFlags::MNT_DETACH)?)
}

/// The guest cannot make mount points in a read-only share: made on the
/// host first, as runc makes them before remounting the root read-only.
fn make_mount_points(bundle: &Bundle) -> Result<(), ShareError> {
    let points = crate::host::mountpoint::mount_points(
        bundle.spec.mounts().as_deref().unwrap_or_default(),
        |i| {
            bundle
                .host_binds
                .iter()
                .find(|b| b.index == i)
                .map(|b| b.source.clone())
        },
    );
    crate::host::mountpoint::create_all(&bundle.rootfs, &points)
        .map_err(|e| ShareError::MountPoint(e.to_string()))
}

#[derive(Debug)]
struct Entry {
    path: PathBuf,
    is_dir: bool,
    mounted: bool,
}

/// The share directory and everything made in it, in creation order.
#[derive(Debug)]
pub struct Share {
    dir: PathBuf,
    entries: Vec<Entry>,
}

impl Share {
    /// Creates the (new, empty) share directory `dir`.
    pub fn create(dir: PathBuf) -> Result<Self, ShareError> {
        let mut share = Self {
            dir: dir.clone(),
            entries: Vec::new(),
        };
        share.mkdir(dir)?;
        Ok(share)
    }

    /// The share's host directory (what the VMM exports).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn mkdir(&mut self, path: PathBuf) -> Result<(), ShareError> {
        std::fs::create_dir(&path).map_err(|source| ShareError::Create {
            path: path.clone(),
            source,
        })?;
        self.entries.push(Entry {
            path,
            is_dir: true,
            mounted: false,
        });
        Ok(())
    }

    fn bind_into(
        &mut self,
        from: &Path,
        tree: Option<OwnedFd>,
        to: PathBuf,
        recursive: bool,
        readonly: bool,
    ) -> Result<(), ShareError> {
        let meta = match &tree {
            Some(fd) => {
                std::fs::File::from(fd.try_clone().map_err(|source| ShareError::Source {
                    path: from.to_path_buf(),
                    source,
                })?)
                .metadata()
            }
            None => std::fs::metadata(from),
        }
        .map_err(|source| ShareError::Source {
            path: from.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            self.mkdir(to.clone())?;
        } else {
            std::fs::File::create_new(&to).map_err(|source| ShareError::Create {
                path: to.clone(),
                source,
            })?;
            self.entries.push(Entry {
                path: to.clone(),
                is_dir: false,
                mounted: false,
            });
        }
        match tree {
            Some(fd) => tree::attach(fd, &to),
            None => bind(from, &to, recursive),
        }
        .map_err(|source| ShareError::Bind {
            from: from.to_path_buf(),
            to: to.clone(),
            source,
        })?;
        if let Some(last) = self.entries.last_mut() {
            last.mounted = true;
        }
        if readonly {
            make_readonly(&to).map_err(|source| ShareError::Bind {
                from: from.to_path_buf(),
                to,
                source,
            })?;
        }
        Ok(())
    }

    /// Binds container `id`'s rootfs and bind-mount sources into the share:
    /// by path, or from the detached `trees` a pod member handed over (see
    /// [`tree`]). On error what was done so far stays recorded for
    /// [`Share::teardown`].
    pub fn add_container(
        &mut self,
        id: &str,
        bundle: &Bundle,
        trees: Option<Trees>,
    ) -> Result<(), ShareError> {
        let base = self.dir.join(id);
        self.mkdir(base.clone())?;
        let readonly_root = bundle.readonly_root();
        if readonly_root && trees.is_none() {
            make_mount_points(bundle)?;
        }
        let mut trees = trees.map(Trees::into_iter);
        let mut next = || trees.as_mut().and_then(Iterator::next);
        self.bind_into(
            &bundle.rootfs,
            next(),
            base.join("rootfs"),
            true,
            readonly_root,
        )?;
        if bundle.host_binds.is_empty() {
            return Ok(());
        }
        self.mkdir(base.join("mounts"))?;
        for b in &bundle.host_binds {
            let dir = base.join("mounts").join(b.index.to_string());
            self.mkdir(dir.clone())?;
            let to = dir.join(b.share_name());
            self.bind_into(&b.source, next(), to, b.recursive, b.readonly)?;
        }
        Ok(())
    }

    /// Unmounts every bind and removes every entry, newest first, with
    /// `rmdir`/`unlink` only. An entry that will not unmount is left in place
    /// (so is its parent, which is not empty); the first problem is returned
    /// after trying everything.
    pub fn teardown(&mut self) -> Result<(), ShareError> {
        self.remove_where(|_| true)
    }

    /// Whether container `id` is on the share.
    pub fn contains(&self, id: &str) -> bool {
        let base = self.dir.join(id);
        self.entries.iter().any(|e| e.path == base)
    }

    /// [`Share::teardown`] of what [`Share::add_container`] made for `id`.
    pub fn remove_container(&mut self, id: &str) -> Result<(), ShareError> {
        let base = self.dir.join(id);
        self.remove_where(|p| p.starts_with(&base))
    }

    fn remove_where(&mut self, wanted: impl Fn(&Path) -> bool) -> Result<(), ShareError> {
        let mut first = None;
        let (mut taken, kept): (Vec<Entry>, Vec<Entry>) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(|e| wanted(&e.path));
        self.entries = kept;
        while let Some(entry) = taken.pop() {
            let unmounted = match entry.mounted {
                true => match unmount(&entry.path) {
                    Err(e) if e.raw_os_error() != Some(libc::EINVAL) => Err(e),
                    _ => Ok(()),
                },
                false => Ok(()),
            };
            let result = unmounted.and_then(|()| match entry.is_dir {
                true => std::fs::remove_dir(&entry.path),
                false => std::fs::remove_file(&entry.path),
            });
            if let Err(source) = result {
                first.get_or_insert(ShareError::Teardown {
                    path: entry.path,
                    source,
                });
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

#[cfg(test)]
mod tests;
