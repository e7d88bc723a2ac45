//! Mount points in a read-only rootfs, made on the host before the rootfs is
//! shared read-only, as runc makes them before it remounts the root
//! read-only: a spec may bind a file onto a path the image lacks (containerd's
//! CRI pause container binds `/etc/resolv.conf` onto a read-only root).
//!
//! The rootfs is the image's and its symlinks are untrusted: every lookup is
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` from the rootfs, and
//! every creation is `mkdirat`/`openat(O_CREAT | O_EXCL | O_NOFOLLOW)` of one
//! name inside a directory so resolved, so nothing is made outside it.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::Mount;

#[derive(Debug, thiserror::Error)]
pub enum MountPointError {
    #[error("mount point {destination} in the rootfs: {what}: {source}")]
    Io {
        destination: String,
        what: &'static str,
        source: io::Error,
    },
    #[error("mount point {0}: not a plain absolute path")]
    BadPath(String),
}

/// What to make at a mount's destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPoint {
    pub destination: PathBuf,
    /// A regular file (a bind mount of a file); else a directory.
    pub file: bool,
}

/// The mount points the guest will need for `mounts` (in order), with the
/// agent's default `/proc`, `/dev` and `/sys`. A destination inside an
/// earlier mount is that mount's business (runc makes it once that mount
/// exists), and is left out. `bind_source(i)` is the host source of mount
/// `i` when it is a bind mount.
pub fn mount_points(
    mounts: &[Mount],
    bind_source: impl Fn(usize) -> Option<PathBuf>,
) -> Vec<MountPoint> {
    let mut made: Vec<PathBuf> = Vec::new();
    let mut out = Vec::new();
    let defaults = ["/proc", "/dev", "/sys"].map(|d| (PathBuf::from(d), None));
    let spec = mounts
        .iter()
        .enumerate()
        .map(|(i, m)| (m.destination().clone(), bind_source(i)));
    for (destination, source) in defaults.into_iter().chain(spec) {
        if made
            .iter()
            .any(|m| destination.starts_with(m) && *m != destination)
        {
            continue;
        }
        let file = source.is_some_and(|s| s.metadata().is_ok_and(|m| !m.is_dir()));
        made.push(destination.clone());
        out.push(MountPoint { destination, file });
    }
    out.dedup_by(|a, b| a.destination == b.destination);
    out
}

/// Makes each mount point that does not exist yet under `rootfs`.
pub fn create_all(rootfs: &Path, points: &[MountPoint]) -> Result<(), MountPointError> {
    let root = open_dir(rootfs).map_err(|source| MountPointError::Io {
        destination: "/".into(),
        what: "open the rootfs",
        source,
    })?;
    for p in points {
        create(&root, p)?;
    }
    Ok(())
}

fn create(root: &OwnedFd, p: &MountPoint) -> Result<(), MountPointError> {
    let shown = p.destination.display().to_string();
    let io = |what| {
        let shown = shown.clone();
        move |source| MountPointError::Io {
            destination: shown,
            what,
            source,
        }
    };
    let mut names = Vec::new();
    for c in p.destination.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => names.push(n.to_os_string()),
            _ => return Err(MountPointError::BadPath(shown)),
        }
    }
    let Some((leaf, parents)) = names.split_last() else {
        return Ok(());
    };
    let mut at = PathBuf::from(".");
    for name in parents {
        let next = at.join(name);
        if resolve(root, &next, true)
            .map_err(io("look up a parent"))?
            .is_none()
        {
            let dir = resolve(root, &at, true)
                .map_err(io("look up a parent"))?
                .ok_or_else(|| io("look up a parent")(io::ErrorKind::NotFound.into()))?;
            mkdirat(&dir, name).map_err(io("create a parent directory"))?;
        }
        at = next;
    }
    if resolve(root, &at.join(leaf), false)
        .map_err(io("look up"))?
        .is_some()
    {
        return Ok(());
    }
    let dir = resolve(root, &at, true)
        .map_err(io("look up its directory"))?
        .ok_or_else(|| io("look up its directory")(io::ErrorKind::NotFound.into()))?;
    if p.file {
        create_file(&dir, leaf).map_err(io("create the file"))
    } else {
        mkdirat(&dir, leaf).map_err(io("create the directory"))
    }
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(nix::fcntl::open(
        path,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

/// `path` (relative) resolved inside `root`; `None` when it does not exist.
fn resolve(root: &OwnedFd, path: &Path, dir: bool) -> io::Result<Option<OwnedFd>> {
    let kind = if dir {
        OFlag::O_DIRECTORY | OFlag::O_RDONLY
    } else {
        OFlag::O_PATH
    };
    let how = OpenHow::new()
        .flags(kind | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match nix::fcntl::openat2(root, path, how) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(errno) => Err(errno.into()),
    }
}

fn mkdirat(dir: &OwnedFd, name: &std::ffi::OsStr) -> io::Result<()> {
    match nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}

fn create_file(dir: &OwnedFd, name: &std::ffi::OsStr) -> io::Result<()> {
    let flags =
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
    // The new file is closed at once.
    drop(nix::fcntl::openat(
        dir,
        name,
        flags,
        Mode::from_bits_truncate(0o644),
    )?);
    Ok(())
}

#[cfg(test)]
mod tests;
