use std::sync::Arc;

use super::*;
use crate::testutil::{running_state, TempDir};

/// A record for `id` whose sandbox is this test process.
fn record(id: &str) -> ContainerState {
    running_state(id, "/run/hull/x/vsock.sock".into())
}

fn store_with(dir: &TempDir, ids: &[&str]) -> StateStore {
    let store = StateStore::new(dir.path().join("root"));
    for id in ids {
        std::fs::create_dir_all(store.dir(id).unwrap()).unwrap();
        store.save(&record(id)).unwrap();
    }
    store
}

#[test]
fn saved_state_loads_back_and_a_missing_one_does_not_exist() {
    let dir = TempDir::new("state-rt");
    let store = store_with(&dir, &["c1"]);
    assert_eq!(store.load("c1").unwrap(), record("c1"));
    let e = store.load("c2").unwrap_err();
    assert!(matches!(e, StateError::NotExist(ref id) if id == "c2"));
    assert_eq!(e.to_string(), "container does not exist");
    // Saving needs the directory claimed first.
    assert!(matches!(
        store.save(&record("c2")),
        Err(StateError::NotExist(_))
    ));
    // Claimed but not written yet: does not exist either.
    let c3 = store.dir("c3").unwrap();
    std::fs::create_dir(&c3).unwrap();
    assert!(matches!(store.load("c3"), Err(StateError::NotExist(_))));
    // ... and reading it left nothing there.
    assert_eq!(std::fs::read_dir(&c3).unwrap().count(), 0);
}

#[test]
fn bad_ids_are_refused() {
    let dir = TempDir::new("state-ids");
    let store = store_with(&dir, &[]);
    for id in ["", "..", ".hidden", "a/b", "../etc", &"x".repeat(129)] {
        assert!(
            matches!(store.load(id), Err(StateError::InvalidId(_))),
            "{id}"
        );
        assert!(
            matches!(store.dir(id), Err(StateError::InvalidId(_))),
            "{id}"
        );
        let mut s = record("ok");
        s.id = id.into();
        assert!(
            matches!(store.save(&s), Err(StateError::InvalidId(_))),
            "{id}"
        );
    }
}

#[test]
fn a_live_sandbox_keeps_its_status_a_dead_or_reused_pid_is_stopped() {
    let live = record("c1");
    assert_eq!(live.current_status(), ContainerStatus::Running);
    let oci = live.oci("root".into());
    assert_eq!((oci.status, oci.pid), (ContainerStatus::Running, live.pid));

    let mut child = std::process::Command::new("true").spawn().unwrap();
    let mut dead = record("c2");
    dead.pid = child.id() as i32;
    child.wait().unwrap();
    assert_eq!(dead.current_status(), ContainerStatus::Stopped);
    let oci = dead.oci(String::new());
    assert_eq!((oci.status, oci.pid), (ContainerStatus::Stopped, 0));

    let mut reused = record("c3");
    reused.hull.pid_start_time += 1;
    assert_eq!(reused.current_status(), ContainerStatus::Stopped);

    let mut stopped = record("c4");
    stopped.status = ContainerStatus::Stopped;
    assert_eq!(stopped.current_status(), ContainerStatus::Stopped);
}

#[test]
fn concurrent_writers_do_not_lose_updates_or_corrupt_the_file() {
    const THREADS: usize = 8;
    const UPDATES: usize = 25;
    let dir = TempDir::new("state-concurrent");
    let store = Arc::new(store_with(&dir, &["c1"]));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for u in 0..UPDATES {
                    store
                        .update("c1", |s| {
                            s.annotations
                                .insert(format!("t{t}-{u}"), "x".repeat(u * 50));
                            Ok(())
                        })
                        .unwrap();
                    // Readers in between always see a whole file.
                    store.load("c1").unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let state = store.load("c1").unwrap();
    assert_eq!(state.annotations.len(), THREADS * UPDATES + 1);
}

#[test]
fn status_moves_only_along_the_state_machine() {
    let dir = TempDir::new("state-status");
    let store = store_with(&dir, &[]);
    std::fs::create_dir_all(store.dir("c1").unwrap()).unwrap();
    let mut s = record("c1");
    s.status = ContainerStatus::Creating;
    store.save(&s).unwrap();
    store.set_status("c1", ContainerStatus::Created).unwrap();
    let e = store.set_status("c1", ContainerStatus::Paused).unwrap_err();
    assert_eq!(e.to_string(), "container cannot go from created to paused");
    store.set_status("c1", ContainerStatus::Running).unwrap();
    assert_eq!(store.load("c1").unwrap().status, ContainerStatus::Running);
}

#[test]
fn listing_skips_what_is_not_a_container() {
    let dir = TempDir::new("state-list");
    let store = StateStore::new(dir.path().join("missing"));
    assert!(store.list().unwrap().is_empty());

    let store = store_with(&dir, &["b", "a"]);
    let root = store.root().to_path_buf();
    std::fs::create_dir(root.join("being-claimed")).unwrap();
    std::fs::write(root.join("a-file"), "").unwrap();
    std::fs::create_dir(root.join(".hidden")).unwrap();
    std::fs::create_dir(root.join("broken")).unwrap();
    std::fs::write(root.join("broken").join(LOCK_FILE), "").unwrap();
    std::fs::write(root.join("broken").join(STATE_FILE), "{").unwrap();
    let listed = store.list().unwrap();
    let ids: Vec<_> = listed.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "broken"]);
    assert_eq!(listed[0].state.as_ref().unwrap(), &record("a"));
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(root.join("a")).unwrap());
    assert_eq!(listed[0].owner_uid, uid);
    let e = listed[2].state.as_ref().unwrap_err();
    assert!(e.to_string().contains("is malformed"), "{e}");
}

#[test]
fn state_json_keeps_private_fields_apart() {
    let v = serde_json::to_value(record("c1")).unwrap();
    for key in [
        "ociVersion",
        "id",
        "status",
        "pid",
        "bundle",
        "rootfs",
        "annotations",
        "created",
    ] {
        assert!(v.get(key).is_some(), "{key} missing in {v}");
    }
    assert_eq!(v["status"], "running");
    assert!(v["hull"]["pidStartTime"].is_u64());
    assert_eq!(v["hull"]["vsockSocket"], "/run/hull/x/vsock.sock");
}
