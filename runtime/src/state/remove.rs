//! The one remover of a container's state directory, used by the sandbox
//! process when it ends and by `hull delete`: files are unlinked and
//! directories removed bottom-up, and nothing that is a mount point (a bind
//! of the share that is still there, a mount that leaked) is ever entered
//! or removed: its mount id differs from the state directory's.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The mount id of `path` itself (not following a final symlink).
fn mount_id(path: &Path) -> io::Result<u64> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: all-zero is a valid statx buffer (statx is not in nix).
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: a valid path, flags and a buffer of the right type.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_MNT_ID,
            &mut stx,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stx.stx_mnt_id)
}

/// Removes `dir` and everything under it that is on the same mount; a
/// mount point inside is an error and stays, with its contents. An absent
/// `dir` is removed already.
pub fn remove_state_dir(dir: &Path) -> io::Result<()> {
    let mnt = match mount_id(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    fn walk(path: &Path, mnt: u64) -> io::Result<()> {
        for entry in std::fs::read_dir(path)? {
            let path = entry?.path();
            if mount_id(&path)? != mnt {
                return Err(io::Error::other(format!(
                    "{} is a mount point",
                    path.display()
                )));
            }
            if std::fs::symlink_metadata(&path)?.is_dir() {
                walk(&path, mnt)?;
                std::fs::remove_dir(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(())
    }
    walk(dir, mnt)?;
    std::fs::remove_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn removes_a_state_tree_without_following_links() {
        let dir = TempDir::new("remove-tree");
        let root = dir.path().join("c1");
        std::fs::create_dir_all(root.join("share/c1/rootfs")).unwrap();
        std::fs::write(root.join("share/c1/rootfs/f"), "").unwrap();
        std::fs::write(root.join("state.json"), "{}").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        remove_state_dir(&root).unwrap();
        assert!(!root.exists());
        assert!(Path::new("/etc/passwd").exists());
        remove_state_dir(&root).unwrap();
    }

    /// A bind still mounted inside (even from the same file system) is never
    /// entered: what it shows survives.
    #[test]
    fn a_mount_point_inside_is_left_with_its_contents() {
        let dir = TempDir::new("remove-mounted");
        let precious = dir.path().join("precious");
        std::fs::create_dir(&precious).unwrap();
        std::fs::write(precious.join("data"), "x").unwrap();
        let root = dir.path().join("c1");
        let target = root.join("share/c1/rootfs");
        std::fs::create_dir_all(&target).unwrap();
        let rc = nix::mount::mount(
            Some(&precious),
            &target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        );
        if let Err(errno) = rc {
            assert!(
                std::env::var_os("CI").is_none(),
                "bind mount: {}",
                io::Error::from(errno)
            );
            eprintln!("SKIPPED: cannot bind mount (not root?)");
            return;
        }
        let e = remove_state_dir(&root).unwrap_err();
        // Unmounting what this test mounted.
        let _ = nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH);
        assert!(e.to_string().contains("is a mount point"), "{e}");
        assert!(precious.join("data").exists());
        remove_state_dir(&root).unwrap();
        assert!(!root.exists());
    }
}
