use std::path::PathBuf;

use super::*;

const V2_ONLY: &str = "\
22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw
35 22 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
36 22 0:31 / /proc rw,nosuid - proc proc rw
";

const V1_ONLY: &str = "\
25 1 8:1 / / rw - ext4 /dev/sda1 rw
31 25 0:28 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/memory rw,nosuid shared:13 - cgroup cgroup rw,memory
35 31 0:32 / /sys/fs/cgroup/pids rw,nosuid shared:14 - cgroup cgroup rw,pids
36 31 0:33 / /sys/fs/cgroup/cpuset rw,nosuid shared:15 - cgroup cgroup rw,cpuset,clone_children
40 25 0:31 /docker/abc /mnt/memory\\040again rw - cgroup cgroup rw,memory
";

const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

fn names(h: &[Hierarchy]) -> Vec<String> {
    h.iter().map(Hierarchy::name).collect()
}

#[test]
fn a_pure_v2_host_has_one_hierarchy() {
    let h = parse_mountinfo(V2_ONLY);
    assert_eq!(
        h,
        [Hierarchy {
            unified: true,
            mountpoint: PathBuf::from("/sys/fs/cgroup"),
            root: "/".into(),
            controllers: vec![],
        }]
    );
}

#[test]
fn v1_mounts_give_their_controllers_once_each() {
    let h = parse_mountinfo(V1_ONLY);
    assert_eq!(
        names(&h),
        ["name=systemd", "cpu,cpuacct", "memory", "pids", "cpuset"]
    );
    assert_eq!(h[1].mountpoint, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
    assert!(h.iter().all(|h| !h.unified && h.root == "/"));
}

#[test]
fn a_hybrid_host_has_v1_controllers_and_the_unified_mount() {
    let h = parse_mountinfo(HYBRID);
    assert_eq!(names(&h), ["cpu", "memory", "name=systemd", "cgroup2"]);
    assert_eq!(h[3].mountpoint, PathBuf::from("/sys/fs/cgroup/unified"));
}

#[test]
fn escapes_and_mount_roots_are_read() {
    let only_second = V1_ONLY
        .lines()
        .filter(|l| l.starts_with("40 "))
        .collect::<Vec<_>>()
        .join("\n");
    let h = parse_mountinfo(&only_second);
    assert_eq!(h[0].mountpoint, PathBuf::from("/mnt/memory again"));
    assert_eq!(h[0].root, "/docker/abc");
    assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
    assert_eq!(unescape("bad\\9x\\"), "bad\\9x\\");
}

#[test]
fn own_cgroups_match_their_hierarchies() {
    let own = parse_proc_cgroup(
        "12:pids:/user.slice/x\n4:cpu,cpuacct:/c\n1:name=systemd:/s\n0::/v2/path\nbroken\n",
    );
    assert_eq!(own.len(), 4);
    let h = parse_mountinfo(V1_ONLY);
    assert_eq!(own_cgroup(&h[0], &own), Some("/s"));
    assert_eq!(own_cgroup(&h[1], &own), Some("/c"));
    assert_eq!(own_cgroup(&h[2], &own), None);
    assert_eq!(own_cgroup(&h[3], &own), Some("/user.slice/x"));
    let v2 = parse_mountinfo(V2_ONLY);
    assert_eq!(own_cgroup(&v2[0], &own), Some("/v2/path"));
}
