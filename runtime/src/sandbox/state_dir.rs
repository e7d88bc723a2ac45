//! A sandbox's state directory, `<root>/<id>`: the VM's vsock socket, the
//! console log and the share. Creating it is how an id is claimed; it is
//! removed (file by file, never recursively) on teardown or drop.

use std::io;
use std::path::{Path, PathBuf};

/// Where `hull run` keeps its state directories.
pub const DEFAULT_STATE_ROOT: &str = "/run/hull";

/// The VM's hybrid vsock socket, in the state directory.
pub const VSOCK_SOCKET: &str = "vsock.sock";

#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error("container {0} already exists")]
    AlreadyExists(String),
    #[error("cannot create state directory {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot remove state directory {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
}

#[derive(Debug)]
pub struct StateDir {
    path: PathBuf,
    removed: bool,
}

impl StateDir {
    /// Creates `root/id`, refusing an id whose directory already exists.
    pub fn create(root: &Path, id: &str) -> Result<Self, StateDirError> {
        let create = |path: &Path, source| StateDirError::Create {
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(root).map_err(|e| create(root, e))?;
        let path = root.join(id);
        match std::fs::create_dir(&path) {
            Ok(()) => Ok(Self {
                path,
                removed: false,
            }),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(StateDirError::AlreadyExists(id.into()))
            }
            Err(e) => Err(create(&path, e)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The host side of the VM's hybrid vsock.
    pub fn vsock_socket(&self) -> PathBuf {
        self.path.join(VSOCK_SOCKET)
    }

    /// Everything the guest printed on its console (and the VMM on stderr).
    pub fn console_log(&self) -> PathBuf {
        self.path.join("console.log")
    }

    /// The virtio-fs share directory.
    pub fn share(&self) -> PathBuf {
        self.path.join("share")
    }

    /// Leaves the directory in place when this is dropped or removed: it
    /// outlives the sandbox process until `hull delete`.
    pub fn keep(&mut self) {
        self.removed = true;
    }

    /// Removes the directory and what is left in it, never entering a
    /// mount point (the share must be torn down first): see
    /// [`crate::state::remove_state_dir`].
    pub fn remove(&mut self) -> Result<(), StateDirError> {
        if self.removed {
            return Ok(());
        }
        crate::state::remove_state_dir(&self.path).map_err(|source| StateDirError::Remove {
            path: self.path.clone(),
            source,
        })?;
        self.removed = true;
        Ok(())
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn ids_are_claimed_once_and_everything_is_removed() {
        let root = TempDir::new("state");
        let mut dir = StateDir::create(root.path(), "c1").unwrap();
        let e = StateDir::create(root.path(), "c1").unwrap_err();
        assert_eq!(e.to_string(), "container c1 already exists");
        std::fs::write(dir.console_log(), "boot\n").unwrap();
        std::fs::write(dir.path().join("vsock.sock_1024"), "").unwrap();
        std::fs::create_dir(dir.share()).unwrap();
        dir.remove().unwrap();
        assert!(!root.path().join("c1").exists());
        dir.remove().unwrap();
        // Gone, so the id can be claimed again; drop removes it too.
        drop(StateDir::create(root.path(), "c1").unwrap());
        assert!(!root.path().join("c1").exists());
    }
}
