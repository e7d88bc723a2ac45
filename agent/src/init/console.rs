//! The init's terminal, as runc makes it: a pty of the container's own devpts
//! instance, its slave the process's stdio (so `tty` prints `/dev/pts/N`) and
//! bound over `/dev/console`, its master handed to the agent.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use agent_protocol::container::WindowSize;

use super::{check, InitError, Result};

/// When the container mounted a devpts at `<root>/dev/pts`, opens a pty there,
/// makes its slave this process's fds 0-2 and returns the master; `None`
/// without that devpts (the agent's pty stays the terminal).
pub fn take_container_pty(root: &Path, size: Option<WindowSize>) -> Result<Option<File>> {
    let ptmx = root.join("dev/pts/ptmx");
    if !is_devpts(&root.join("dev/pts")) {
        return Ok(None);
    }
    let (master, slave) = crate::pty::open_at(&ptmx)
        .map_err(|e| InitError::os(format!("open a pty of {}", ptmx.display()), e))?;
    crate::pty::set_size(&master, size);
    for target in 0..3 {
        // SAFETY: dup2 onto this process's own stdio; the old ends (the
        // agent's pty slave) are closed by it.
        let rc = unsafe { libc::dup2(slave.as_raw_fd(), target) };
        check(rc, || format!("make the container's pty fd {target}"))?;
    }
    Ok(Some(master))
}

/// Whether `dir` is the root of a devpts mount.
fn is_devpts(dir: &Path) -> bool {
    const DEVPTS_SUPER_MAGIC: libc::c_long = 0x1cd1;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: all-zero is a valid statfs; statfs writes into it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid path and a writable statfs.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    rc == 0 && st.f_type as libc::c_long == DEVPTS_SUPER_MAGIC
}
