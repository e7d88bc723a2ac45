use std::path::{Path, PathBuf};

use super::*;

fn v1(mountpoint: &str, controller: &str, root: &str) -> Hierarchy {
    Hierarchy {
        unified: false,
        mountpoint: mountpoint.into(),
        root: root.into(),
        controllers: vec![controller.into()],
    }
}

fn v2(mountpoint: &str) -> Hierarchy {
    Hierarchy {
        unified: true,
        mountpoint: mountpoint.into(),
        root: "/".into(),
        controllers: vec![],
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn cgroupfs_paths_are_normalised() {
    let parse = |s| CgroupPath::parse(Some(s), "id", false);
    assert_eq!(
        parse("/a//b/./c/").unwrap(),
        CgroupPath::Absolute(strs(&["a", "b", "c"]))
    );
    assert_eq!(
        parse("a/x/../b").unwrap(),
        CgroupPath::Relative(strs(&["a", "b"]))
    );
    assert_eq!(
        CgroupPath::parse(None, "c1", false).unwrap(),
        CgroupPath::Relative(strs(&["c1"]))
    );
    assert_eq!(
        CgroupPath::parse(Some(""), "c1", false).unwrap(),
        CgroupPath::Relative(strs(&["c1"]))
    );
}

#[test]
fn escapes_and_the_root_are_refused() {
    for bad in ["../x", "/a/../../etc", "a/../..", "/.."] {
        let e = CgroupPath::parse(Some(bad), "id", false).unwrap_err();
        assert!(matches!(e, CgroupError::Escape(_)), "{bad}: {e}");
    }
    for root in ["/", "/a/..", "."] {
        let e = CgroupPath::parse(Some(root), "id", false).unwrap_err();
        assert!(matches!(e, CgroupError::RootCgroup(_)), "{root}: {e}");
    }
}

#[test]
fn slices_expand_like_systemd() {
    assert_eq!(expand_slice("system.slice").unwrap(), ["system.slice"]);
    assert_eq!(
        expand_slice("a-b-c.slice").unwrap(),
        ["a.slice", "a-b.slice", "a-b-c.slice"]
    );
    assert_eq!(expand_slice("-.slice").unwrap(), Vec::<String>::new());
    for bad in [
        "system",
        ".slice",
        "a--b.slice",
        "-a.slice",
        "a/b.slice",
        "a-.slice",
    ] {
        assert_eq!(expand_slice(bad), None, "{bad}");
    }
}

#[test]
fn systemd_paths_map_to_the_unit_systemd_would_use() {
    let parse = |s| CgroupPath::parse(Some(s), "id", true);
    assert_eq!(
        parse("kubepods-besteffort.slice:cri-containerd:abc").unwrap(),
        CgroupPath::Absolute(strs(&[
            "kubepods.slice",
            "kubepods-besteffort.slice",
            "cri-containerd-abc.scope"
        ]))
    );
    assert_eq!(
        parse(":docker:1234").unwrap(),
        CgroupPath::Absolute(strs(&["system.slice", "docker-1234.scope"]))
    );
    assert_eq!(
        parse("user.slice::x").unwrap(),
        CgroupPath::Absolute(strs(&["user.slice", "-x.scope"]))
    );
    assert_eq!(
        parse("-.slice:p:machine-x.slice").unwrap(),
        CgroupPath::Absolute(strs(&["machine-x.slice"]))
    );
    assert_eq!(
        CgroupPath::parse(None, "c9", true).unwrap(),
        CgroupPath::Absolute(strs(&["system.slice", "runc-c9.scope"]))
    );
    for bad in [
        "a.slice:b",
        "/abs/path",
        "a:b:c:d",
        "x.slice:p:",
        "bad:p:n",
        "a.slice:p:../n",
    ] {
        let e = parse(bad).unwrap_err();
        assert!(matches!(e, CgroupError::SystemdPath { .. }), "{bad}: {e}");
    }
}

#[test]
fn absolute_paths_start_at_the_mount_point() {
    let p = CgroupPath::parse(Some("/hull/c1"), "id", false).unwrap();
    let h = v1("/sys/fs/cgroup/memory", "memory", "/docker/x");
    assert_eq!(
        p.place(&h, Some("/docker/x/own"), false).unwrap(),
        Path::new("/sys/fs/cgroup/memory/hull/c1")
    );
    assert_eq!(
        p.place(&v2("/sys/fs/cgroup"), None, true).unwrap(),
        Path::new("/sys/fs/cgroup/hull/c1")
    );
}

#[test]
fn relative_paths_start_at_the_own_cgroup_on_v1_and_its_parent_on_v2() {
    let p = CgroupPath::parse(Some("c1"), "id", false).unwrap();
    let mem = v1("/sys/fs/cgroup/memory", "memory", "/");
    assert_eq!(
        p.place(&mem, Some("/process_api/abc"), false).unwrap(),
        Path::new("/sys/fs/cgroup/memory/process_api/abc/c1")
    );
    // The mount's root is taken off the own path.
    let bound = v1("/mnt/mem", "memory", "/process_api");
    assert_eq!(
        p.place(&bound, Some("/process_api/abc"), false).unwrap(),
        Path::new("/mnt/mem/abc/c1")
    );
    // Hybrid: the unified mount is joined like a v1 hierarchy.
    assert_eq!(
        p.place(&v2("/sys/fs/cgroup/unified"), Some("/user/s"), false)
            .unwrap(),
        Path::new("/sys/fs/cgroup/unified/user/s/c1")
    );
    // Pure v2: the parent of the own cgroup.
    assert_eq!(
        p.place(
            &v2("/sys/fs/cgroup"),
            Some("/user.slice/session-1.scope"),
            true
        )
        .unwrap(),
        PathBuf::from("/sys/fs/cgroup/user.slice/c1")
    );
    assert_eq!(
        p.place(&v2("/sys/fs/cgroup"), Some("/"), true).unwrap(),
        PathBuf::from("/sys/fs/cgroup/c1")
    );
}

#[test]
fn relative_paths_need_an_own_cgroup_inside_the_mount() {
    let p = CgroupPath::parse(Some("c1"), "id", false).unwrap();
    let h = v1("/mnt/mem", "memory", "/other");
    assert!(matches!(
        p.place(&h, None, false),
        Err(CgroupError::NoOwnCgroup(_))
    ));
    assert!(matches!(
        p.place(&h, Some("/process_api/abc"), false),
        Err(CgroupError::OutsideMount { .. })
    ));
}
