use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use super::*;
use crate::testutil::TempDir;

/// Fake hierarchies in a temp dir: directories, and `cgroup.procs` written
/// as plain files.
fn fake(dir: &Path) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for (name, unified) in [("cpu", false), ("cpuset", false), ("unified", true)] {
        let mountpoint = dir.join(name);
        std::fs::create_dir(&mountpoint).unwrap();
        out.push(Hierarchy {
            unified,
            mountpoint,
            root: "/".into(),
            controllers: if unified { vec![] } else { vec![name.into()] },
        });
    }
    std::fs::write(dir.join("cpuset/cpuset.cpus"), "0-3\n").unwrap();
    std::fs::write(dir.join("cpuset/cpuset.mems"), "0\n").unwrap();
    out
}

fn own() -> Vec<(String, String)> {
    mountinfo::parse_proc_cgroup("2:cpu:/me\n1:cpuset:/me\n0::/me\n")
}

#[test]
fn join_creates_the_directories_and_writes_the_pid() {
    let tmp = TempDir::new("cgroup-join");
    let h = fake(tmp.path());
    let path = CgroupPath::parse(Some("a/b"), "id", false).unwrap();
    let cg = Cgroup::join_in(&h, &own(), &path, 4242, None).unwrap();
    let expected: Vec<PathBuf> = ["cpu", "cpuset", "unified"]
        .iter()
        .map(|n| tmp.path().join(n).join("me/a/b"))
        .collect();
    assert_eq!(cg.paths(), expected);
    assert_eq!(cg.created().len(), 9, "{:?}", cg.created());
    for dir in cg.paths() {
        assert_eq!(
            std::fs::read_to_string(dir.join("cgroup.procs")).unwrap(),
            "4242"
        );
    }
    assert_eq!(pids(cg.paths()), [4242]);
    // A new cpuset inherits its parent's CPUs and memory nodes.
    let leaf = tmp.path().join("cpuset/me/a/b");
    assert_eq!(
        std::fs::read_to_string(leaf.join("cpuset.cpus")).unwrap(),
        "0-3"
    );
    assert_eq!(
        std::fs::read_to_string(leaf.join("cpuset.mems")).unwrap(),
        "0"
    );
    // cgroup v2 ancestors were asked to enable controllers.
    assert!(tmp
        .path()
        .join("unified/me/cgroup.subtree_control")
        .exists());
}

#[test]
fn existing_directories_are_reused_and_not_counted_as_created() {
    let tmp = TempDir::new("cgroup-existing");
    let h = fake(tmp.path());
    for n in ["cpu", "cpuset", "unified"] {
        std::fs::create_dir_all(tmp.path().join(n).join("me")).unwrap();
    }
    let path = CgroupPath::parse(Some("/abs"), "id", false).unwrap();
    let cg = Cgroup::join_in(&h, &own(), &path, 7, None).unwrap();
    assert_eq!(cg.paths()[0], tmp.path().join("cpu/abs"));
    assert_eq!(cg.created().len(), 3);
}

#[test]
fn a_failed_join_removes_what_it_created() {
    let tmp = TempDir::new("cgroup-undo");
    let mut h = fake(tmp.path());
    // The last hierarchy's mount point is a file: creating under it fails.
    std::fs::remove_dir(&h[2].mountpoint).unwrap();
    std::fs::write(&h[2].mountpoint, "").unwrap();
    // Not a cpuset here: a fake cpuset gets plain cpuset.* files, which
    // would keep its directory from being removed (a real one's would not).
    h[1].controllers = vec!["memory".into()];
    let path = CgroupPath::parse(Some("x/y"), "id", false).unwrap();
    let own = mountinfo::parse_proc_cgroup("2:cpu:/me\n1:memory:/me\n0::/me\n");
    let e = Cgroup::join_in(&h, &own, &path, 1, None).unwrap_err();
    assert!(matches!(e, CgroupError::Create { .. }), "{e}");
    assert!(!tmp.path().join("cpu/me").exists());
    assert!(!tmp.path().join("cpuset/me").exists());
}

#[test]
fn no_hierarchies_is_an_error() {
    let path = CgroupPath::parse(Some("x"), "id", false).unwrap();
    assert!(matches!(
        Cgroup::join_in(&[], &[], &path, 1, None),
        Err(CgroupError::NoHierarchies)
    ));
}

#[test]
fn remove_takes_empty_leaves_and_reports_the_rest() {
    let tmp = TempDir::new("cgroup-remove");
    let empty = tmp.path().join("empty");
    let gone = tmp.path().join("gone");
    let full = tmp.path().join("full");
    std::fs::create_dir(&empty).unwrap();
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("file"), "x").unwrap();
    let e = remove(&[full.clone(), empty.clone(), gone]).unwrap_err();
    // A plain directory with a file is ENOTEMPTY (a real cgroup with
    // processes is EBUSY, see the root test below).
    assert!(matches!(e, CgroupError::Remove { .. }), "{e}");
    assert!(!empty.exists(), "later paths are still removed");
    assert!(full.join("file").exists(), "never recursive");
}

#[test]
fn pids_merges_and_skips_unreadable() {
    let tmp = TempDir::new("cgroup-pids");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    std::fs::write(a.join("cgroup.procs"), "30\n10\n").unwrap();
    std::fs::write(b.join("cgroup.procs"), "10\n20\nx\n").unwrap();
    assert_eq!(pids(&[a, b, tmp.path().join("missing")]), [10, 20, 30]);
}

struct Sleeper(Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Really joins this host's cgroups (as root, with a writable cgroup file
/// system). A child `sleep` is moved, never the test runner itself.
#[test]
fn joins_a_real_cgroup_when_root() {
    if !nix::unistd::geteuid().is_root() {
        println!("note: not root, skipping the real cgroup join");
        return;
    }
    let text = std::fs::read_to_string(MOUNTINFO).unwrap_or_default();
    let hierarchies = mountinfo::parse_mountinfo(&text);
    let writable = hierarchies.iter().all(|h| {
        let probe = h
            .mountpoint
            .join(format!("hull-probe-{}", std::process::id()));
        let ok = std::fs::create_dir(&probe).is_ok();
        let _ = std::fs::remove_dir(&probe);
        ok
    });
    if hierarchies.is_empty() || !writable {
        println!("note: no writable cgroup file system, skipping the real cgroup join");
        return;
    }
    let mut sleeper = Sleeper(Command::new("sleep").arg("30").spawn().unwrap());
    let pid = sleeper.0.id() as i32;
    let name = format!("hull-test-{}", std::process::id());
    let cg = Cgroup::join(Some(&name), "unused", false, pid, None).unwrap();
    assert_eq!(cg.paths().len(), hierarchies.len());
    let theirs = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for (controllers, path) in mountinfo::parse_proc_cgroup(&theirs) {
        if hierarchies.iter().any(|h| h.matches(&controllers)) {
            assert!(path.ends_with(&name), "{controllers}: {path}");
        }
    }
    assert_eq!(pids(cg.paths()), [pid]);
    let e = remove(cg.paths()).unwrap_err();
    assert!(matches!(e, CgroupError::Populated(_)), "{e}");
    let _ = sleeper.0.kill();
    let _ = sleeper.0.wait();
    drop(sleeper);
    remove(cg.paths()).unwrap();
    assert!(cg.paths().iter().all(|p| !p.exists()));
}

/// A process moved in with the host device filter opens `/dev/null` and
/// not a node of a device hull does not need (`/dev/kmsg`, 1:11, made in a
/// temp dir). Needs root and a writable cgroup2 with bpf: fails under
/// `CI=true` without them.
#[test]
fn the_host_device_filter_admits_only_what_a_vm_needs() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let v2 = mountinfo::parse_mountinfo(&std::fs::read_to_string(MOUNTINFO).unwrap_or_default())
        .into_iter()
        .find(|h| h.unified);
    let usable = nix::unistd::geteuid().is_root()
        && v2.as_ref().is_some_and(|h| {
            let probe = h
                .mountpoint
                .join(format!("hull-probe-{}", std::process::id()));
            let ok = std::fs::create_dir(&probe).is_ok();
            let _ = std::fs::remove_dir(&probe);
            ok
        });
    if !usable {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "needs root and a writable cgroup2 (CI=true: not skipping)"
        );
        println!("note: not root or no writable cgroup2, skipping the device filter test");
        return;
    }
    let tmp = TempDir::new("cgroup-devices");
    let kmsg = tmp.path().join("kmsg");
    let dev = nix::sys::stat::makedev(1, 11);
    nix::sys::stat::mknod(
        &kmsg,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::S_IRUSR,
        dev,
    )
    .unwrap();
    let script = r#"read go
for f in /dev/null "$1"; do if (: <"$f"); then echo "open $f"; else echo "denied $f"; fi; done"#;
    let mut child = Sleeper(
        Command::new("sh")
            .args(["-c", script, "sh"])
            .arg(&kmsg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id() as i32;
    let name = format!("hull-test-devices-{}", std::process::id());
    let program = devices::host_program().unwrap();
    let cg = Cgroup::join(Some(&name), "unused", false, pid, Some(&program)).unwrap();
    // Unfiltered, root opens the node: the filter is what denies it.
    assert!(std::fs::File::open(&kmsg).is_ok());
    child.0.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let lines: Vec<String> = BufReader::new(child.0.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .collect();
    let _ = child.0.wait();
    drop(child);
    remove(cg.paths()).unwrap();
    assert_eq!(
        lines,
        [
            "open /dev/null".to_string(),
            format!("denied {}", kmsg.display())
        ]
    );
}
