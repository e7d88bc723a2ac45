//! The program in a real kernel: a child cgroup of the test's own, a
//! program denying writes to `/dev/null`, a forked child moved into it.
//! Needs root, cgroup2 and bpf; skipped with a message otherwise (failed
//! under `CI=true`).

use std::ffi::CString;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxDeviceCgroup;

use super::attach::{attached, can_load, verify};
use super::bpf::tests::{engine_rules, from_json, random_rules};
use super::bpf::MAX_RULES;
use super::with_runc_defaults;
use super::{attach, available_or_skip, compile};

/// Where cgroup2 is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified`
/// on a hybrid host).
fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let mut fields = l.split_whitespace();
        let (_, dir, fstype) = (fields.next()?, fields.next()?, fields.next()?);
        (fstype == "cgroup2").then(|| PathBuf::from(dir))
    })
}

/// This process's cgroup v2 directory.
fn own_cgroup() -> Option<PathBuf> {
    let mount = cgroup2_mount()?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(mount.join(rel.trim_start_matches('/')))
}

/// A child cgroup, removed when dropped (its processes are gone by then).
struct Cgroup(PathBuf);

impl Drop for Cgroup {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir(&self.0) {
            eprintln!("cannot remove test cgroup {}: {e}", self.0.display());
        }
    }
}

/// What the child found, as its exit status.
const CHILD_OK: i32 = 0;
const CHILD_NOT_MOVED: i32 = 10;
const CHILD_NULL_WRITABLE: i32 = 11;
const CHILD_NULL_WRITE_NOT_EPERM: i32 = 12;
const CHILD_NULL_UNREADABLE: i32 = 13;
const CHILD_ZERO_UNUSABLE: i32 = 14;
const CHILD_NULL_NOT_WRITABLE: i32 = 15;

/// Forks a child that joins `cgroup` and tries the devices; its status.
fn probe_in(cgroup: &Path, null_writable: bool) -> i32 {
    let procs = CString::new(
        cgroup
            .join("cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    // SAFETY: a NUL-terminated path; the fd is closed below.
    let procs_fd = unsafe { libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    assert!(
        procs_fd >= 0,
        "open cgroup.procs: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the child only makes async-signal-safe calls (write, open,
    // reading errno, _exit) before it exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: async-signal-safe calls on constant, valid arguments.
        unsafe {
            let code = if libc::write(procs_fd, b"0".as_ptr().cast(), 1) != 1 {
                CHILD_NOT_MOVED
            } else {
                let w = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                let errno = *libc::__errno_location();
                if null_writable && w < 0 {
                    CHILD_NULL_NOT_WRITABLE
                } else if !null_writable && w >= 0 {
                    CHILD_NULL_WRITABLE
                } else if !null_writable && errno != libc::EPERM {
                    CHILD_NULL_WRITE_NOT_EPERM
                } else if libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) < 0 {
                    CHILD_NULL_UNREADABLE
                } else if libc::open(c"/dev/zero".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) < 0 {
                    CHILD_ZERO_UNUSABLE
                } else {
                    CHILD_OK
                }
            };
            libc::_exit(code);
        }
    }
    // SAFETY: closing our copy of the fd.
    unsafe { libc::close(procs_fd) };
    assert!(pid > 0, "fork: {}", std::io::Error::last_os_error());
    let mut status = 0;
    // SAFETY: waiting for our own child with a valid status pointer.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
    libc::WEXITSTATUS(status)
}

fn rules(json: &str) -> Vec<LinuxDeviceCgroup> {
    serde_json::from_str(json).unwrap()
}

#[test]
fn program_denies_dev_null_writes_in_a_real_cgroup_and_is_replaced() {
    const TEST: &str = "program_denies_dev_null_writes_in_a_real_cgroup_and_is_replaced";
    if !available_or_skip(nix::unistd::geteuid().is_root(), TEST, "needs root") {
        return;
    }
    let Some(parent) = own_cgroup().filter(|p| p.join("cgroup.procs").exists()) else {
        available_or_skip(
            false,
            TEST,
            "no cgroup2 mount or cgroup v2 entry in /proc/self/cgroup",
        );
        return;
    };
    if !available_or_skip(
        can_load(),
        TEST,
        "cannot load BPF_PROG_TYPE_CGROUP_DEVICE programs",
    ) {
        return;
    }
    let dir = parent.join(format!("hull-devices-test-{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    let cgroup = Cgroup(dir);

    let deny_null_writes = compile(&rules(
        r#"[{"allow":true,"access":"rwm"},
            {"allow":false,"type":"c","major":1,"minor":3,"access":"w"}]"#,
    ))
    .unwrap();
    attach(&cgroup.0, &deny_null_writes).unwrap();
    let first = attached(&cgroup.0).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(
        probe_in(&cgroup.0, false),
        CHILD_OK,
        "statuses: see CHILD_*"
    );

    // An update swaps the program: one attached, a new one, writes allowed.
    let allow_all = compile(&rules(r#"[{"allow":true,"access":"rwm"}]"#)).unwrap();
    attach(&cgroup.0, &allow_all).unwrap();
    let second = attached(&cgroup.0).unwrap();
    assert_eq!(second.len(), 1);
    assert_ne!(first, second);
    assert_eq!(probe_in(&cgroup.0, true), CHILD_OK, "statuses: see CHILD_*");
}

/// Whether device programs can be loaded here (root, BPF); says why not.
fn can_load_or_skip(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    available_or_skip(
        root && can_load(),
        test,
        "cannot load device programs (root, bpf)",
    )
}

#[test]
fn kernel_verifier_accepts_every_program() {
    const TEST: &str = "kernel_verifier_accepts_every_program";
    if !can_load_or_skip(TEST) {
        return;
    }
    let mut lists = vec![
        Vec::new(),
        from_json(r#"[{"allow":true,"access":"rwm"}]"#),
        from_json(r#"[{"allow":false,"access":"rwm"}]"#),
    ];
    for config in [
        include_str!("../../tests/fixtures/engines/docker-config.json"),
        include_str!("../../tests/fixtures/engines/podman-config.json"),
        include_str!("../../tests/fixtures/engines/containerd-config.json"),
    ] {
        let rules = engine_rules(config);
        lists.push(with_runc_defaults(&[], &rules).1);
        lists.push(rules);
    }
    let mut seed = 0x2545_f491_4f6c_dd1d;
    lists.extend((0..50).map(|n| random_rules(&mut seed, n % 12)));
    for rules in &lists {
        let prog = compile(rules).unwrap();
        if let Err(e) = verify(&prog) {
            panic!(
                "{e}; rules {:?}",
                rules.iter().map(|r| r.to_string()).collect::<Vec<_>>()
            );
        }
    }
}

/// The most rules [`compile`] takes, each with every test (type, major,
/// minor, partial access): the verifier keeps up to three pending branches
/// per rule and refuses more than 8192.
#[test]
fn kernel_verifier_accepts_the_most_rules() {
    const TEST: &str = "kernel_verifier_accepts_the_most_rules";
    if !can_load_or_skip(TEST) {
        return;
    }
    let rules: Vec<LinuxDeviceCgroup> = (0..MAX_RULES)
        .map(|i| {
            let access = ["r", "w", "rw", "m"][i % 4];
            let json = format!(
                r#"{{"allow":{},"type":"c","major":{},"minor":{i},"access":"{access}"}}"#,
                i % 3 != 0,
                i % 300
            );
            serde_json::from_str(&json).unwrap()
        })
        .collect();
    verify(&compile(&rules).unwrap()).unwrap();
    let one_too_many = [rules.as_slice(), &rules[..1]].concat();
    assert!(compile(&one_too_many).is_err());
}
