//! Helpers for the commands' unit tests.

use runtime::state::{ContainerState, StateStore};
use runtime::testutil::running_state;
pub use runtime::testutil::TempDir;

/// A store whose root is inside a new temporary directory.
pub fn store_in(name: &str) -> (TempDir, StateStore) {
    let dir = TempDir::new(name);
    let store = StateStore::new(dir.path().join("root"));
    (dir, store)
}

/// A running container whose sandbox is this test process (its directory
/// is created).
pub fn live_state(store: &StateStore, id: &str) -> ContainerState {
    let dir = store.dir(id).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    running_state(id, dir.join("vsock.sock"))
}

/// A container recorded as running whose sandbox process has exited.
pub fn dead_state(store: &StateStore, id: &str) -> ContainerState {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let mut state = live_state(store, id);
    state.pid = child.id() as i32;
    child.wait().unwrap();
    state
}
