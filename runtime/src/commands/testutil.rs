//! Helpers for the commands' unit tests.

use std::collections::BTreeMap;

use runtime::state::proc::ProcStat;
use runtime::state::{ContainerState, ContainerStatus, Private, StateStore, OCI_VERSION};
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
    let me = std::process::id() as i32;
    ContainerState {
        oci_version: OCI_VERSION.into(),
        id: id.into(),
        status: ContainerStatus::Running,
        pid: me,
        bundle: format!("/bundles/{id}").into(),
        rootfs: format!("/bundles/{id}/rootfs").into(),
        annotations: BTreeMap::from([("org.example".into(), "yes".into())]),
        created: "2024-01-02T03:04:05.123Z".into(),
        hull: Private {
            sandbox_start_time: ProcStat::read(me).unwrap().unwrap().start_time,
            vsock_socket: dir.join("vsock.sock"),
            ..Private::default()
        },
    }
}

/// A container recorded as running whose sandbox process has exited.
pub fn dead_state(store: &StateStore, id: &str) -> ContainerState {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let mut state = live_state(store, id);
    state.pid = child.id() as i32;
    child.wait().unwrap();
    state
}
