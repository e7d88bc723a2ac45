//! Reading, writing and listing `state.json` files under a state root.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use agent_protocol::container::valid_id;

use super::file::{write_atomic, FileLock, LockKind};
use super::{ContainerState, ContainerStatus, StateError, LOCK_FILE, SPEC_FILE, STATE_FILE};

/// The containers under one state root.
#[derive(Debug, Clone)]
pub struct StateStore {
    root: PathBuf,
}

/// One container directory found by [`StateStore::list`].
#[derive(Debug)]
pub struct Listed {
    pub id: String,
    /// Owner of the directory (the container's owner, as runc has it).
    pub owner_uid: u32,
    pub state: Result<ContainerState, StateError>,
}

impl StateStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `root/id`, for a valid id.
    pub fn dir(&self, id: &str) -> Result<PathBuf, StateError> {
        if !valid_id(id) {
            return Err(StateError::InvalidId(id.into()));
        }
        Ok(self.root.join(id))
    }

    fn lock(&self, id: &str, kind: LockKind) -> Result<(PathBuf, FileLock), StateError> {
        let dir = self.dir(id)?;
        let path = dir.join(LOCK_FILE);
        match FileLock::acquire(&path, kind) {
            Ok(lock) => Ok((dir, lock)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StateError::NotExist(id.into())),
            Err(source) => Err(StateError::Lock { path, source }),
        }
    }

    /// Reads the state of `id` under a shared lock.
    pub fn load(&self, id: &str) -> Result<ContainerState, StateError> {
        let (dir, _lock) = self.lock(id, LockKind::Shared)?;
        read(&dir, id)
    }

    /// Writes `state` (its directory must exist: claiming it is
    /// [`StateDir`](crate::sandbox::state_dir::StateDir)'s job).
    pub fn save(&self, state: &ContainerState) -> Result<(), StateError> {
        let (dir, _lock) = self.lock(&state.id, LockKind::Exclusive)?;
        write(&dir, state)
    }

    /// Keeps the spec `id` was created with (`config.json` in its state
    /// directory): later commands (`start`'s hooks, `exec`'s defaults,
    /// `delete`'s poststop hooks) use it, so editing the bundle after
    /// `create` does not change the container, as with runc.
    pub fn save_spec(&self, id: &str, spec: &oci_spec::runtime::Spec) -> Result<(), StateError> {
        let (dir, _lock) = self.lock(id, LockKind::Exclusive)?;
        let path = dir.join(SPEC_FILE);
        let bytes = serde_json::to_vec(spec).map_err(|source| StateError::Malformed {
            path: path.clone(),
            source,
        })?;
        super::file::write_atomic(&path, &bytes)
            .map_err(|source| StateError::Write { path, source })
    }

    /// The spec kept by [`StateStore::save_spec`].
    pub fn load_spec(&self, id: &str) -> Result<oci_spec::runtime::Spec, StateError> {
        let (dir, _lock) = self.lock(id, LockKind::Shared)?;
        let path = dir.join(SPEC_FILE);
        let bytes = std::fs::read(&path).map_err(|source| StateError::Read {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| StateError::Malformed { path, source })
    }

    /// Read, change and write back the state of `id`, all under one
    /// exclusive lock; returns the new state.
    pub fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut ContainerState) -> Result<(), StateError>,
    ) -> Result<ContainerState, StateError> {
        let (dir, _lock) = self.lock(id, LockKind::Exclusive)?;
        let mut state = read(&dir, id)?;
        change(&mut state)?;
        write(&dir, &state)?;
        Ok(state)
    }

    /// Moves `id` to status `to` if the state machine allows it; returns
    /// the new state.
    pub fn set_status(&self, id: &str, to: ContainerStatus) -> Result<ContainerState, StateError> {
        self.update(id, |s| {
            s.status = s.status.transition(to)?;
            Ok(())
        })
    }

    /// Every container directory under the root, sorted by id. A root that
    /// does not exist holds no containers; a directory without a state
    /// file (being claimed or torn down right now) is left out.
    pub fn list(&self) -> Result<Vec<Listed>, StateError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StateError::List {
                    path: self.root.clone(),
                    source,
                })
            }
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| StateError::List {
                path: self.root.clone(),
                source,
            })?;
            let Ok(id) = entry.file_name().into_string() else {
                continue;
            };
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_dir() || !valid_id(&id) {
                continue;
            }
            let state = self.load(&id);
            if matches!(state, Err(StateError::NotExist(_))) {
                continue;
            }
            found.push(Listed {
                id,
                owner_uid: meta.uid(),
                state,
            });
        }
        found.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(found)
    }
}

fn read(dir: &Path, id: &str) -> Result<ContainerState, StateError> {
    let path = dir.join(STATE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(StateError::NotExist(id.into()))
        }
        Err(source) => return Err(StateError::Read { path, source }),
    };
    serde_json::from_slice(&bytes).map_err(|source| StateError::Malformed { path, source })
}

fn write(dir: &Path, state: &ContainerState) -> Result<(), StateError> {
    let path = dir.join(STATE_FILE);
    let bytes = serde_json::to_vec(state).map_err(|source| StateError::Malformed {
        path: path.clone(),
        source,
    })?;
    write_atomic(&path, &bytes).map_err(|source| StateError::Write { path, source })
}
