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
    let Some((master, slave)) = crate::pty::open_in_root(root)
        .map_err(|e| InitError::os("open a pty of the container's devpts", e))?
    else {
        return Ok(None);
    };
    crate::pty::set_size(&master, size);
    for target in 0..3 {
        // SAFETY: dup2 onto this process's own stdio; the old ends (the
        // agent's pty slave) are closed by it.
        let rc = unsafe { libc::dup2(slave.as_raw_fd(), target) };
        check(rc, || format!("make the container's pty fd {target}"))?;
    }
    Ok(Some(master))
}
