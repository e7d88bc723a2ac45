use std::os::unix::fs::symlink;

use super::*;
use crate::testutil::TempDir;

fn mounts(json: &str) -> Vec<Mount> {
    serde_json::from_str(json).unwrap()
}

#[test]
fn points_skip_what_lives_inside_an_earlier_mount() {
    let src = TempDir::new("mp-src");
    let file = src.path().join("resolv.conf");
    std::fs::write(&file, "x").unwrap();
    let m = mounts(
        r#"[{"destination": "/dev/pts", "type": "devpts"},
            {"destination": "/etc/resolv.conf", "type": "bind", "options": ["rbind"]},
            {"destination": "/data", "type": "tmpfs"},
            {"destination": "/data/sub", "type": "tmpfs"}]"#,
    );
    let points = mount_points(&m, |i| (i == 1).then(|| file.clone()));
    let shown: Vec<(String, bool)> = points
        .iter()
        .map(|p| (p.destination.display().to_string(), p.file))
        .collect();
    assert_eq!(
        shown,
        [
            ("/proc".into(), false),
            ("/dev".into(), false),
            ("/sys".into(), false),
            ("/etc/resolv.conf".into(), true),
            ("/data".into(), false),
        ]
    );
}

#[test]
fn missing_points_are_made_and_symlinks_stay_inside() {
    let root = TempDir::new("mp-root");
    let outside = TempDir::new("mp-outside");
    std::fs::create_dir(root.path().join("etc")).unwrap();
    // An image symlink pointing out of the root must resolve inside it.
    symlink(outside.path(), root.path().join("escape")).unwrap();
    let points = [
        MountPoint {
            destination: "/etc/resolv.conf".into(),
            file: true,
        },
        MountPoint {
            destination: "/a/b/c".into(),
            file: false,
        },
    ];
    create_all(root.path(), &points).unwrap();
    // Through a symlink to a directory missing inside the root: an error,
    // and nothing made outside.
    let through_link = [MountPoint {
        destination: "/escape/x".into(),
        file: true,
    }];
    assert!(create_all(root.path(), &through_link).is_err());
    assert!(root.path().join("etc/resolv.conf").is_file());
    assert!(root.path().join("a/b/c").is_dir());
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    // Existing points are left alone; a second run changes nothing.
    create_all(root.path(), &points).unwrap();
    let bad = [MountPoint {
        destination: "/x/../y".into(),
        file: false,
    }];
    assert!(matches!(
        create_all(root.path(), &bad),
        Err(MountPointError::BadPath(_))
    ));
}
