//! The init's terminal, as runc makes it: a pty of the container's own devpts
//! instance, its slave the process's stdio (so `tty` prints `/dev/pts/N`) and
//! bound over `/dev/console`, its master handed to the agent. Made here, once
//! the container's mounts exist; the agent makes none for an init.

use std::fs::File;
use std::path::Path;

use agent_protocol::container::WindowSize;

use super::{checked, InitError, Result};

/// Opens the init's pty: in the devpts mounted at `<root>/dev/pts`, else
/// (no devpts there) the guest's; makes its slave this process's fds 0-2 and
/// returns the master.
pub fn take_pty(root: &Path, size: Option<WindowSize>) -> Result<File> {
    let found = crate::pty::open_in_root(root)
        .map_err(|e| InitError::os("open a pty of the container's devpts", e))?;
    let (master, slave) = match found {
        Some(pair) => pair,
        None => crate::pty::open_guest().map_err(|e| InitError::os("open a pty", e))?,
    };
    crate::pty::set_size(&master, size);
    for target in 0..3 {
        // Onto this process's own stdio (/dev/null until now).
        let dup = match target {
            0 => nix::unistd::dup2_stdin(&slave),
            1 => nix::unistd::dup2_stdout(&slave),
            _ => nix::unistd::dup2_stderr(&slave),
        };
        checked(dup, || format!("make the pty fd {target}"))?;
    }
    Ok(master)
}
