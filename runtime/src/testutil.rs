//! Helpers for unit tests (of the library and of the `hull` binary).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::state::proc::ProcStat;
use crate::state::{ContainerState, ContainerStatus, Private, OCI_VERSION};

/// A fresh directory under the system's temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "hull-runtime-test-{name}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `running` record for `id` whose sandbox is this test process, its
/// bundle at `/bundles/<id>`.
pub fn running_state(id: &str, vsock_socket: PathBuf) -> ContainerState {
    let me = std::process::id() as i32;
    let start_time = ProcStat::read(me)
        .ok()
        .flatten()
        .expect("this process's stat")
        .start_time;
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
            pid_start_time: start_time,
            vsock_socket,
            ..Private::default()
        },
    }
}
