//! These need CAP_SYS_ADMIN; without it they skip. Each libtest test runs on
//! its own thread, and `unshare(CLONE_NEWNS)` moves only the calling thread,
//! so the binds are seen by this test alone and never by the host.

use std::fs;

use serde_json::json;

use super::*;
use crate::testutil::TempDir;

fn in_private_namespace() -> bool {
    match enter_private_mount_namespace() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

fn bundle(dir: &Path, mounts: serde_json::Value) -> Bundle {
    fs::create_dir_all(dir.join("rootfs/etc")).unwrap();
    fs::write(dir.join("rootfs/etc/motd"), "rootfs file").unwrap();
    let config = json!({
        "process": {"args": ["/bin/true"]},
        "root": {"path": "rootfs"},
        "mounts": mounts,
    });
    fs::write(dir.join("config.json"), config.to_string()).unwrap();
    Bundle::load(dir).unwrap()
}

fn mounted(path: &Path, mountinfo: &str) -> bool {
    let info = fs::read_to_string(mountinfo).unwrap();
    let needle = format!(" {} ", path.display());
    info.lines().any(|l| l.contains(&needle))
}

#[test]
fn binds_are_private_and_torn_down() {
    if !in_private_namespace() {
        return;
    }
    let tmp = TempDir::new("share");
    let data = tmp.path().join("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("x"), "bind dir file").unwrap();
    fs::write(tmp.path().join("hosts"), "127.0.0.1 box\n").unwrap();
    let b = bundle(
        &tmp.path().join("bundle"),
        json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/data", "type": "bind", "source": data, "options": ["rbind"]},
            {"destination": "/etc/hosts", "source": tmp.path().join("hosts"), "options": ["bind", "ro"]},
        ]),
    );
    let share_dir = tmp.path().join("share");
    let mut share = Share::create(share_dir.clone()).unwrap();
    share.add_container("c1", &b, None).unwrap();
    let rootfs = share_dir.join("c1/rootfs");
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/motd")).unwrap(),
        "rootfs file"
    );
    assert_eq!(
        fs::read_to_string(share_dir.join("c1/mounts/1/data/x")).unwrap(),
        "bind dir file"
    );
    assert_eq!(
        fs::read_to_string(share_dir.join("c1/mounts/2/hosts")).unwrap(),
        "127.0.0.1 box\n"
    );
    assert!(
        !share_dir.join("c1/mounts/0").exists(),
        "proc is not a bind"
    );
    assert!(mounted(&rootfs, "/proc/thread-self/mountinfo"));
    assert!(
        !mounted(&rootfs, "/proc/1/mountinfo"),
        "the bind leaked into the host's mount namespace"
    );

    share.teardown().unwrap();
    assert!(!share_dir.exists());
    assert!(!mounted(&rootfs, "/proc/thread-self/mountinfo"));
    assert_eq!(
        fs::read_to_string(tmp.path().join("bundle/rootfs/etc/motd")).unwrap(),
        "rootfs file",
        "teardown must never touch the sources"
    );
    assert!(data.join("x").exists());
}

#[test]
fn a_failed_add_is_undone_by_drop() {
    if !in_private_namespace() {
        return;
    }
    let tmp = TempDir::new("share-fail");
    let b = bundle(
        &tmp.path().join("bundle"),
        json!([{"destination": "/data", "type": "bind", "source": "/nonexistent/src"}]),
    );
    let share_dir = tmp.path().join("share");
    let mut share = Share::create(share_dir.clone()).unwrap();
    let e = share.add_container("c1", &b, None).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/src"), "{e}");
    assert!(mounted(
        &share_dir.join("c1/rootfs"),
        "/proc/thread-self/mountinfo"
    ));
    drop(share);
    assert!(!share_dir.exists());
    assert!(tmp.path().join("bundle/rootfs/etc/motd").exists());
}

#[test]
fn an_existing_share_dir_is_refused() {
    let tmp = TempDir::new("share-exists");
    let e = Share::create(tmp.path().to_path_buf()).unwrap_err();
    assert!(matches!(e, ShareError::Create { .. }), "{e}");
}

/// A pod member's mounts reach the owner's share as detached trees, also
/// where the owner's namespace does not see them: here the member's rootfs
/// is a tmpfs mounted in another mount namespace (as Podman's private
/// overlay mounts are, for an owner started before them).
#[test]
fn a_members_trees_reach_a_namespace_its_mounts_do_not() {
    if !in_private_namespace() {
        return;
    }
    let tmp = TempDir::new("share-trees");
    fs::write(tmp.path().join("hosts"), "127.0.0.1 member\n").unwrap();
    let b = bundle(
        &tmp.path().join("bundle"),
        json!([{"destination": "/etc/hosts", "source": tmp.path().join("hosts"), "options": ["bind", "ro"]}]),
    );
    let rootfs = b.rootfs.clone();
    let member = std::thread::spawn(move || {
        enter_private_mount_namespace().unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &rootfs,
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        fs::write(rootfs.join("marker"), "member's rootfs").unwrap();
        let b = Bundle::load(rootfs.parent().unwrap()).unwrap();
        Trees::open(&b).unwrap()
    });
    let trees = member.join().unwrap();
    assert_eq!(trees.fds().len(), 2, "the rootfs and one bind");
    assert!(
        !b.rootfs.join("marker").exists(),
        "the member's mount is not seen here"
    );
    let share_dir = tmp.path().join("share");
    let mut share = Share::create(share_dir.clone()).unwrap();
    share.add_container("c1", &b, Some(trees)).unwrap();
    assert_eq!(
        fs::read_to_string(share_dir.join("c1/rootfs/marker")).unwrap(),
        "member's rootfs"
    );
    assert_eq!(
        fs::read_to_string(share_dir.join("c1/mounts/0/hosts")).unwrap(),
        "127.0.0.1 member\n"
    );
    share.teardown().unwrap();
    assert!(!share_dir.exists());

    let one = std::fs::File::open(tmp.path()).unwrap().into();
    assert!(Trees::received(vec![one], 1).is_none(), "a tree short");
}
