//! The kernel starts the agent on the initramfs, the root of all mounts,
//! which `pivot_root` refuses to move. So the agent first moves itself onto
//! a tmpfs mounted over `/` and re-executes from there: a container's
//! `pivot_root` then works, and the guest's own mounts can be detached from
//! the container's view instead of lying under it.

use std::convert::Infallible;
use std::io;

use nix::mount::MsFlags;

/// Set in the environment of the re-executed agent.
const MARK: &str = "HULL_AGENT_SWITCHED";
const NEW_ROOT: &str = "/newroot";

fn check<T>(result: nix::Result<T>, what: &str) -> io::Result<T> {
    result.map_err(|errno| {
        let e = io::Error::from(errno);
        io::Error::new(e.kind(), format!("{what}: {e}"))
    })
}

/// Whether this process already runs from the tmpfs root.
pub fn done() -> bool {
    std::env::var_os(MARK).is_some()
}

/// Copies `/init` onto a tmpfs, moves the tmpfs onto `/`, chroots and
/// re-executes; returns only on failure.
pub fn switch() -> io::Error {
    match try_switch() {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn try_switch() -> io::Result<Infallible> {
    std::fs::create_dir_all(NEW_ROOT)?;
    check(
        nix::mount::mount(
            Some("tmpfs"),
            NEW_ROOT,
            Some("tmpfs"),
            MsFlags::MS_NOSUID,
            Some("mode=0755"),
        ),
        "mount the new root",
    )?;
    std::fs::copy("/init", format!("{NEW_ROOT}/init"))?;
    // The old copy is not needed any more: free its pages.
    let _ = std::fs::remove_file("/init");
    let _ = std::fs::remove_file("/dev/console");
    std::fs::create_dir_all(format!("{NEW_ROOT}/dev"))?;
    std::env::set_current_dir(NEW_ROOT)?;
    // Moving the mount we are in onto `/`, then rooting there.
    check(
        nix::mount::mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>),
        "move the new root onto /",
    )?;
    check(nix::unistd::chroot("."), "chroot to the new root")?;
    check(nix::unistd::chdir("/"), "chdir /")?;
    let mark = std::ffi::CString::new(format!("{MARK}=1")).map_err(io::Error::other)?;
    // The agent is still single-threaded here: execve's argument vectors may allocate.
    let errno = match nix::unistd::execve(c"/init", &[c"/init"], &[mark.as_c_str()]) {
        Ok(never) => match never {},
        Err(errno) => errno,
    };
    Err(io::Error::from(errno))
}
