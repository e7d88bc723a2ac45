//! Named network namespaces, as `ip netns add NAME` makes them: a file
//! (under `/run/netns`) with the namespace bind-mounted onto it, so it
//! outlives every process in it; removed by unmounting and unlinking.

use std::path::Path;

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use super::CniError;

fn err(path: &Path) -> impl Fn(std::io::Error) -> CniError + '_ {
    move |source| CniError::Netns {
        path: path.to_path_buf(),
        source,
    }
}

/// Makes a new network namespace at `path` (which must not exist).
pub fn create(path: &Path) -> Result<(), CniError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err(path))?;
    }
    std::fs::File::create_new(path).map_err(err(path))?;
    // Network namespaces are per thread: a thread of its own makes one and
    // pins it on the file, then ends.
    let target = path.to_path_buf();
    let made = std::thread::spawn(move || -> std::io::Result<()> {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET)?;
        nix::mount::mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )?;
        Ok(())
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("the namespace thread panicked")));
    if let Err(e) = made {
        let _ = std::fs::remove_file(path);
        return Err(err(path)(e));
    }
    Ok(())
}

/// Unmounts and removes the namespace file at `path`; gone already is fine.
pub fn remove(path: &Path) -> Result<(), CniError> {
    match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(err(path)(e.into())),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(err(path)(e)),
    }
}
