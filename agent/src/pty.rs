//! Ptys of a container's devpts instance: `dev/pts` is resolved inside the
//! container's root (a symlink in the image cannot lead out of it), must be
//! a devpts mount, and its `ptmx` is opened without following links; the
//! slave comes through the master (TIOCGPTPEER), never by a path.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use agent_protocol::container::WindowSize;
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

nix::ioctl_write_ptr_bad!(tiocsptlck, libc::TIOCSPTLCK, libc::c_int);
nix::ioctl_write_int_bad!(tiocgptpeer, libc::TIOCGPTPEER);
nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, libc::winsize);
pub(crate) use tiocswinsz as set_winsize;

/// A new (master, slave) pair from the devpts mounted at `dev/pts` of the
/// tree whose root is `root`; `None` when no devpts is mounted there.
pub fn open_in_root(root: &Path) -> io::Result<Option<(File, File)>> {
    let root = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(root)?;
    let Some(pts) = openat2_in_root(&root, c"dev/pts")? else {
        return Ok(None);
    };
    let st = nix::sys::statfs::fstatfs(&pts)?;
    if st.filesystem_type() != nix::sys::statfs::DEVPTS_SUPER_MAGIC {
        return Ok(None);
    }
    let master = File::from(nix::fcntl::openat(
        &pts,
        c"ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )?);
    let slave = unlocked_peer(&master)?;
    Ok(Some((master, slave)))
}

/// Unlocks the pty `master` and opens its slave through it (TIOCGPTPEER).
fn unlocked_peer(master: &File) -> io::Result<File> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int, and `unlock` is one; `master` is open.
    unsafe { tiocsptlck(master.as_raw_fd(), &unlock) }?;
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd.
    let slave = unsafe { tiocgptpeer(master.as_raw_fd(), flags) }?;
    // SAFETY: TIOCGPTPEER returned a fresh fd that nothing else owns.
    Ok(unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(slave) })
}

/// An O_PATH directory fd for `path` resolved as if `root` were `/`
/// (openat2 RESOLVE_IN_ROOT, no magic links); `None` if it does not exist.
fn openat2_in_root(root: &File, path: &CStr) -> io::Result<Option<OwnedFd>> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match nix::fcntl::openat2(root, path, how) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(None),
        Err(errno) => Err(errno.into()),
    }
}

/// A new (master, slave) pair from the guest's own devpts (`/dev/ptmx`).
pub fn open_guest() -> io::Result<(File, File)> {
    let master = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open("/dev/ptmx")?;
    let slave = unlocked_peer(&master)?;
    Ok((master, slave))
}

/// Sets the window size on a pty master (nothing without a size).
pub fn set_size(master: &File, size: Option<WindowSize>) {
    if let Some(size) = size {
        let ws = libc::winsize {
            ws_row: size.rows,
            ws_col: size.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize, and `ws` is one; `master` is open.
        let _ = unsafe { tiocswinsz(master.as_raw_fd(), &ws) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlinked_dev_does_not_lead_to_the_hosts_devpts() {
        let root = std::env::temp_dir().join(format!("hull-pty-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        // Followed from the real root, `dev` would be this machine's /dev
        // (whose pts is a devpts); inside `root` it is a loop.
        std::os::unix::fs::symlink("/dev", root.join("dev")).unwrap();
        assert!(!matches!(open_in_root(&root), Ok(Some(_))));
        std::fs::remove_file(root.join("dev")).unwrap();
        std::fs::create_dir_all(root.join("dev/pts")).unwrap();
        // A plain directory is no devpts.
        assert!(matches!(open_in_root(&root), Ok(None)));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
