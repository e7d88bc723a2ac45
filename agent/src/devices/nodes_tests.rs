//! [`super::create_nodes`] in a temporary rootfs (mknod needs root).

use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxDevice;

use super::{available_or_skip, create_nodes, DevicesError};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("hull-devices-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn device(json: &str) -> LinuxDevice {
    serde_json::from_str(json).unwrap()
}

fn is_root(test: &str) -> bool {
    available_or_skip(nix::unistd::geteuid().is_root(), test, "mknod needs root")
}

fn rdev(path: &Path) -> (u32, u32) {
    let r = fs::symlink_metadata(path).unwrap().rdev();
    (libc::major(r), libc::minor(r))
}

#[test]
fn makes_nodes_with_their_type_numbers_mode_and_owner() {
    if !is_root("makes_nodes_with_their_type_numbers_mode_and_owner") {
        return;
    }
    let tmp = TempDir::new("make");
    let root = tmp.0.join("root");
    fs::create_dir(&root).unwrap();
    let devices = [
        device(r#"{"path":"/dev/null","type":"c","major":1,"minor":3}"#),
        device(
            r#"{"path":"/dev/sdz","type":"b","major":8,"minor":16,"fileMode":8630,"uid":1000,"gid":1001}"#,
        ),
        device(r#"{"path":"/dev/deep/er/zero","type":"u","major":1,"minor":5}"#),
        device(r#"{"path":"/dev/./fifo","type":"p"}"#),
        device(r#"{"path":"/dev/ptmx","type":"c","major":5,"minor":2}"#),
    ];
    create_nodes(&root, &devices).unwrap();

    let null = fs::symlink_metadata(root.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(rdev(&root.join("dev/null")), (1, 3));
    assert_eq!(
        null.mode() & 0o7777,
        0o666,
        "default mode, whatever the umask"
    );
    assert_eq!((null.uid(), null.gid()), (0, 0));

    // fileMode 8630 = 0o20666: the type bits are dropped, as runc does.
    let sdz = fs::symlink_metadata(root.join("dev/sdz")).unwrap();
    assert!(sdz.file_type().is_block_device());
    assert_eq!(rdev(&root.join("dev/sdz")), (8, 16));
    assert_eq!(sdz.mode() & 0o7777, 0o666);
    assert_eq!((sdz.uid(), sdz.gid()), (1000, 1001));

    assert!(fs::metadata(root.join("dev/deep/er")).unwrap().is_dir());
    assert!(fs::symlink_metadata(root.join("dev/deep/er/zero"))
        .unwrap()
        .file_type()
        .is_char_device());
    assert!(fs::symlink_metadata(root.join("dev/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(
        !root.join("dev/ptmx").exists(),
        "/dev/ptmx is the pty set-up's"
    );

    // Again: the nodes are there already, identical.
    create_nodes(&root, &devices).unwrap();
    // A different node at a taken path is refused.
    let other = device(r#"{"path":"/dev/null","type":"c","major":1,"minor":5}"#);
    match create_nodes(&root, &[other]) {
        Err(DevicesError::Exists { found, .. }) => assert_eq!(found, "character device 1:3"),
        r => panic!("expected Exists, got {r:?}"),
    }
    fs::write(root.join("dev/file"), "").unwrap();
    let file = device(r#"{"path":"/dev/file","type":"p"}"#);
    assert!(matches!(
        create_nodes(&root, &[file]),
        Err(DevicesError::Exists { .. })
    ));
}

#[test]
fn symlinks_and_dotdot_stay_inside_the_root() {
    if !is_root("symlinks_and_dotdot_stay_inside_the_root") {
        return;
    }
    let tmp = TempDir::new("escape");
    let root = tmp.0.join("root");
    let outside = tmp.0.join("outside");
    fs::create_dir_all(root.join("dev")).unwrap();
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::create_dir(&outside).unwrap();
    // An absolute link to the host's directory means root + that path.
    symlink(&outside, root.join("abs")).unwrap();
    // `..` stops at the root.
    symlink("../../../..", root.join("dev/up")).unwrap();
    symlink("/sub", root.join("dev/in")).unwrap();

    let up = device(r#"{"path":"/dev/up/null","type":"c","major":1,"minor":3}"#);
    let dotdot = device(r#"{"path":"/../../zero","type":"c","major":1,"minor":5}"#);
    let inside = device(r#"{"path":"/dev/in/full","type":"c","major":1,"minor":7}"#);
    create_nodes(&root, &[up, dotdot, inside]).unwrap();
    assert_eq!(rdev(&root.join("null")), (1, 3));
    assert_eq!(rdev(&root.join("zero")), (1, 5));
    assert_eq!(rdev(&root.join("sub/full")), (1, 7));
    assert!(!tmp.0.join("null").exists() && !tmp.0.join("zero").exists());

    // The link's target does not exist inside the root: refused, and
    // nothing is made outside.
    let abs = device(r#"{"path":"/abs/tty","type":"c","major":5,"minor":0}"#);
    let e = create_nodes(&root, &[abs]).unwrap_err();
    assert!(matches!(e, DevicesError::Node { .. }), "{e}");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn invalid_entries_are_refused_before_anything_is_made() {
    let tmp = TempDir::new("invalid");
    let good = device(r#"{"path":"/dev/null","type":"c","major":1,"minor":3}"#);
    for (json, needle) in [
        (
            r#"{"path":"dev/x","type":"c","major":1,"minor":3}"#,
            "not absolute",
        ),
        (
            r#"{"path":"/..","type":"c","major":1,"minor":3}"#,
            "is the root",
        ),
        (r#"{"path":"/dev/x","type":"a"}"#, "type a"),
        (
            r#"{"path":"/dev/x","type":"c","major":-1,"minor":3}"#,
            "major number -1",
        ),
        (
            r#"{"path":"/dev/x","type":"b","major":1,"minor":4294967296}"#,
            "minor number",
        ),
    ] {
        let e = create_nodes(&tmp.0, &[good.clone(), device(json)]).unwrap_err();
        assert!(e.to_string().contains(needle), "{json}: {e}");
        assert!(!tmp.0.join("dev").exists(), "{json}: made something");
    }
}
