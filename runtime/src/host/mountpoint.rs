//! Mount points in a read-only rootfs, made on the host before the rootfs is
//! shared read-only, as runc makes them before it remounts the root
//! read-only: a spec may bind a file onto a path the image lacks (containerd's
//! CRI pause container binds `/etc/resolv.conf` onto a read-only root).
//!
//! The rootfs is the image's and its symlinks are untrusted: every lookup is
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` from the rootfs, and
//! every creation is `mkdirat`/`openat(O_CREAT | O_EXCL | O_NOFOLLOW)` of one
//! name inside a directory so resolved, so nothing is made outside it.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

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

fn cstring(s: &std::ffi::OsStr) -> io::Result<CString> {
    CString::new(s.as_encoded_bytes()).map_err(|_| io::ErrorKind::InvalidInput.into())
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = cstring(path.as_os_str())?;
    // SAFETY: a valid path; the fd returned is owned below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `path` (relative) resolved inside `root`; `None` when it does not exist.
fn resolve(root: &OwnedFd, path: &Path, dir: bool) -> io::Result<Option<OwnedFd>> {
    let c = cstring(path.as_os_str())?;
    // SAFETY: all-zero is a valid open_how; the fields are set below.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    let kind = if dir {
        libc::O_DIRECTORY | libc::O_RDONLY
    } else {
        libc::O_PATH
    };
    how.flags = (kind | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: openat2 with a valid dirfd, NUL-terminated path and an
    // open_how of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: a fresh fd owned here.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
}

fn mkdirat(dir: &OwnedFd, name: &std::ffi::OsStr) -> io::Result<()> {
    let c = cstring(name)?;
    // SAFETY: a directory fd and one NUL-terminated name.
    if unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) } < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e);
        }
    }
    Ok(())
}

fn create_file(dir: &OwnedFd, name: &std::ffi::OsStr) -> io::Result<()> {
    let c = cstring(name)?;
    let flags = libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_WRONLY | libc::O_CLOEXEC;
    // SAFETY: a directory fd and one NUL-terminated name.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags, 0o644) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd, closed at once.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(())
}

#[cfg(test)]
mod tests;
