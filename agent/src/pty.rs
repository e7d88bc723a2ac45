//! Ptys of a container's devpts instance: `dev/pts` is resolved inside the
//! container's root (a symlink in the image cannot lead out of it), must be
//! a devpts mount, and its `ptmx` is opened without following links; the
//! slave comes through the master (TIOCGPTPEER), never by a path.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use agent_protocol::container::WindowSize;

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
    const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
    // SAFETY: all-zero is a valid statfs; fstatfs writes into it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and a writable statfs.
    if unsafe { libc::fstatfs(pts.as_raw_fd(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if st.f_type as i64 != DEVPTS_SUPER_MAGIC {
        return Ok(None);
    }
    // SAFETY: openat relative to a directory fd we own, with a constant name.
    let master = unsafe {
        libc::openat(
            pts.as_raw_fd(),
            c"ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    if master < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd owned here.
    let master = unsafe { File::from_raw_fd(master) };
    let slave = unlocked_peer(&master)?;
    Ok(Some((master, slave)))
}

/// Unlocks the pty `master` and opens its slave through it (TIOCGPTPEER).
fn unlocked_peer(master: &File) -> io::Result<File> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK with a valid int on a pty master.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd.
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd owned here.
    Ok(unsafe { File::from_raw_fd(slave) })
}

/// An O_PATH directory fd for `path` resolved as if `root` were `/`
/// (openat2 RESOLVE_IN_ROOT, no magic links); `None` if it does not exist.
fn openat2_in_root(root: &File, path: &CStr) -> io::Result<Option<OwnedFd>> {
    // SAFETY: all-zero is a valid open_how; the fields are set below.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: openat2 with a valid dirfd, NUL-terminated path and open_how
    // of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: a fresh fd owned here.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
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
        // SAFETY: TIOCSWINSZ with a valid winsize on the master.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
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
