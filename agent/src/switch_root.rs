//! The kernel starts the agent on the initramfs, the root of all mounts,
//! which `pivot_root` refuses to move. So the agent first moves itself onto
//! a tmpfs mounted over `/` and re-executes from there: a container's
//! `pivot_root` then works, and the guest's own mounts can be detached from
//! the container's view instead of lying under it.

use std::ffi::CString;
use std::io;

/// Set in the environment of the re-executed agent.
const MARK: &str = "HULL_AGENT_SWITCHED";
const NEW_ROOT: &str = "/newroot";

fn check(rc: libc::c_int, what: &str) -> io::Result<()> {
    if rc < 0 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(())
    }
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

enum Never {}

fn try_switch() -> io::Result<Never> {
    std::fs::create_dir_all(NEW_ROOT)?;
    let (tmpfs, target) = (c"tmpfs", c"/newroot");
    // SAFETY: valid C strings; a fresh tmpfs on an empty directory.
    let rc = unsafe {
        libc::mount(
            tmpfs.as_ptr(),
            target.as_ptr(),
            tmpfs.as_ptr(),
            libc::MS_NOSUID,
            c"mode=0755".as_ptr().cast(),
        )
    };
    check(rc, "mount the new root")?;
    std::fs::copy("/init", format!("{NEW_ROOT}/init"))?;
    // The old copy is not needed any more: free its pages.
    let _ = std::fs::remove_file("/init");
    let _ = std::fs::remove_file("/dev/console");
    std::fs::create_dir_all(format!("{NEW_ROOT}/dev"))?;
    std::env::set_current_dir(NEW_ROOT)?;
    // SAFETY: moving the mount we are in onto `/`, then rooting there.
    unsafe {
        check(
            libc::mount(
                c".".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_MOVE,
                std::ptr::null(),
            ),
            "move the new root onto /",
        )?;
        check(libc::chroot(c".".as_ptr()), "chroot to the new root")?;
        check(libc::chdir(c"/".as_ptr()), "chdir /")?;
    }
    let init = CString::new("/init").map_err(io::Error::other)?;
    let mark = CString::new(format!("{MARK}=1")).map_err(io::Error::other)?;
    let argv = [init.as_ptr(), std::ptr::null()];
    let envp = [mark.as_ptr(), std::ptr::null()];
    // SAFETY: NULL-terminated arrays of valid C strings that outlive the call.
    unsafe { libc::execve(init.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Err(io::Error::last_os_error())
}
