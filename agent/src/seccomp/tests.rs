//! The filters are really installed, each in a forked child (a filter cannot
//! be removed); the child reports through its exit code.

use std::ffi::CString;
use std::io;

use oci_spec::runtime::{LinuxSeccomp, Spec};

use super::*;

fn profile(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).expect("test profile parses")
}

fn engine_profile(engine: &str) -> LinuxSeccomp {
    let path = format!(
        "{}/../tests/fixtures/engines/{engine}-config.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("fixture readable");
    let spec: Spec = serde_json::from_str(&text).expect("fixture parses");
    spec.linux()
        .as_ref()
        .and_then(|l| l.seccomp().clone())
        .expect("fixture has linux.seccomp")
}

/// errno of the last failed call.
fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Forks; the child sets no_new_privs, installs `prog`, runs `checks` and
/// exits with its result (0 = all held). Returns that exit code. The child
/// makes only raw syscalls: the parent is a multi-threaded test harness.
fn run_filtered(prog: &Program, checks: &dyn Fn() -> i32) -> i32 {
    // SAFETY: the child below only makes syscalls and _exit, no allocation.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: prctl with constant arguments.
        let code = if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            101
        } else if install(prog).is_err() {
            102
        } else {
            checks()
        };
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child, with a valid status pointer.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid, "waitpid: {}", io::Error::last_os_error());
    assert!(
        libc::WIFEXITED(status),
        "child did not exit: status {status:#x}"
    );
    libc::WEXITSTATUS(status)
}

/// Raw syscall with up to three arguments: (result, errno).
fn sys(nr: libc::c_long, a: u64, b: u64, c: u64) -> (libc::c_long, i32) {
    // SAFETY: the tests only make calls whose arguments are plain values or
    // valid pointers.
    let rc = unsafe { libc::syscall(nr, a, b, c) };
    (rc, if rc < 0 { errno() } else { 0 })
}

#[test]
fn docker_default_profile_compiles_and_is_enforced() {
    let prog = compile(&engine_profile("docker")).expect("docker profile compiles");
    assert!(prog.instructions() > 100, "{prog:?}");
    assert!(prog.skipped().is_empty(), "{prog:?}");
    let code = run_filtered(&prog, &|| {
        if sys(libc::SYS_getppid, 0, 0, 0).0 <= 0 {
            return 1;
        }
        // Not in the allow list: defaultAction ERRNO without errnoRet → EPERM.
        if sys(libc::SYS_syslog, 10, 0, 0) != (-1, libc::EPERM) {
            return 2;
        }
        // clone3 → SCMP_ACT_ERRNO with errnoRet 38.
        if sys(libc::SYS_clone3, 0, 0, 0) != (-1, libc::ENOSYS) {
            return 3;
        }
        // personality is allowed only for listed arg0 values.
        if sys(libc::SYS_personality, 0xffff_ffff, 0, 0).0 < 0 {
            return 4;
        }
        if sys(libc::SYS_personality, 1, 0, 0) != (-1, libc::EPERM) {
            return 5;
        }
        0
    });
    assert_eq!(code, 0);
}

#[test]
fn podman_default_profile_compiles_and_is_enforced() {
    let prog = compile(&engine_profile("podman")).expect("podman profile compiles");
    let code = run_filtered(&prog, &|| {
        if sys(libc::SYS_getppid, 0, 0, 0).0 <= 0 {
            return 1;
        }
        // Not listed: defaultErrnoRet 38.
        if sys(libc::SYS_add_key, 0, 0, 0) != (-1, libc::ENOSYS) {
            return 2;
        }
        // Listed with SCMP_ACT_ERRNO errnoRet 1.
        if sys(libc::SYS_acct, 0, 0, 0) != (-1, libc::EPERM) {
            return 3;
        }
        0
    });
    assert_eq!(code, 0);
}

#[test]
fn errno_rule_blocks_mkdir_and_leaves_the_rest() {
    let prog = compile(&profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
    ))
    .expect("compiles");
    let dir = std::env::temp_dir().join(format!("hull-seccomp-test-{}", std::process::id()));
    let path = CString::new(dir.to_str().expect("utf-8 temp dir")).expect("no NUL");
    let p = path.as_ptr() as u64;
    let code = run_filtered(&prog, &|| {
        if sys(libc::SYS_mkdir, p, 0o700, 0) != (-1, libc::EPERM) {
            return 1;
        }
        if sys(libc::SYS_mkdirat, libc::AT_FDCWD as u64, p, 0o700) != (-1, libc::EPERM) {
            return 2;
        }
        if sys(libc::SYS_getppid, 0, 0, 0).0 <= 0 {
            return 3;
        }
        // rmdir is not filtered: it runs and finds nothing to remove.
        if sys(libc::SYS_rmdir, p, 0, 0) != (-1, libc::ENOENT) {
            return 4;
        }
        0
    });
    assert_eq!(code, 0);
    assert!(!dir.exists(), "mkdir ran in spite of the filter");
}

#[test]
fn default_errno_ret_is_returned_for_unlisted_calls() {
    let prog = compile(&profile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 18, "syscalls": [
            {"names": ["exit_group", "exit"], "action": "SCMP_ACT_ALLOW"}]}"#,
    ))
    .expect("compiles");
    let code = run_filtered(&prog, &|| {
        if sys(libc::SYS_getppid, 0, 0, 0) != (-1, libc::EXDEV) {
            return 1;
        }
        0
    });
    assert_eq!(code, 0);
}

#[test]
fn argument_conditions_select_calls() {
    // personality: EPERM unless arg0 is the query value 0xffffffff.
    // dup: EXDEV when bit 0x100 of arg0 is set, or arg0 is 16 or 17
    // (two conditions on one argument: one rule each, ORed).
    let prog = compile(&profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_NE"}]},
            {"names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
             "args": [{"index": 0, "value": 256, "valueTwo": 256, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
             "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 17, "op": "SCMP_CMP_EQ"}]}]}"#,
    ))
    .expect("compiles");
    let code = run_filtered(&prog, &|| {
        if sys(libc::SYS_personality, 0xffff_ffff, 0, 0).0 < 0 {
            return 1;
        }
        if sys(libc::SYS_personality, 8, 0, 0) != (-1, libc::EPERM) {
            return 2;
        }
        if sys(libc::SYS_dup, 0x101, 0, 0) != (-1, libc::EXDEV) {
            return 3;
        }
        if sys(libc::SYS_dup, 16, 0, 0) != (-1, libc::EXDEV) {
            return 4;
        }
        if sys(libc::SYS_dup, 17, 0, 0) != (-1, libc::EXDEV) {
            return 5;
        }
        // Neither rule matches: the kernel's own answer.
        if sys(libc::SYS_dup, 18, 0, 0) != (-1, libc::EBADF) {
            return 6;
        }
        if sys(libc::SYS_dup, 1, 0, 0).0 < 0 {
            return 7;
        }
        0
    });
    assert_eq!(code, 0);
}

#[test]
fn flags_are_passed_to_seccomp() {
    let prog = compile(&profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}]}"#,
    ))
    .expect("compiles");
    assert_eq!(prog.flags(), SUPPORTED_FLAGS);
    let code = run_filtered(&prog, &|| {
        if sys(libc::SYS_getppid, 0, 0, 0) != (-1, libc::EXDEV) {
            return 1;
        }
        0
    });
    assert_eq!(code, 0);
}

fn refused(json: &str) -> String {
    compile(&profile(json))
        .expect_err("profile is refused")
        .to_string()
}

#[test]
fn notify_and_its_fields_are_refused_by_name() {
    let e = refused(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}"#,
    );
    assert!(
        e.contains("syscalls[0].action") && e.contains("SCMP_ACT_NOTIFY"),
        "{e}"
    );
    let e = refused(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#);
    assert!(e.contains("defaultAction"), "{e}");
    let e = refused(r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}"#);
    assert!(e.contains("listenerPath"), "{e}");
    let e = refused(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
    );
    assert!(
        e.contains("flags[0]") && e.contains("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"),
        "{e}"
    );
}

#[test]
fn bad_rules_are_errors() {
    let e = refused(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["dup"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    assert!(e.contains("syscalls[0].args[0].index"), "{e}");
    let e = refused(r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 65536}"#);
    assert!(e.contains("defaultErrnoRet"), "{e}");
    let e = refused(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}"#,
    );
    assert!(e.contains("syscalls[0].names"), "{e}");
}

#[test]
fn unknown_names_and_default_action_rules_are_skipped() {
    let prog = compile(&profile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["getppid", "hull_no_such_syscall"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["exit_group"], "action": "SCMP_ACT_ALLOW"}]}"#,
    ))
    .expect("compiles");
    assert_eq!(prog.skipped(), ["hull_no_such_syscall"]);
    let code = run_filtered(&prog, &|| {
        if sys(libc::SYS_getppid, 0, 0, 0).0 <= 0 {
            return 1;
        }
        if sys(libc::SYS_syslog, 10, 0, 0) != (-1, libc::EPERM) {
            return 2;
        }
        0
    });
    assert_eq!(code, 0);
}

#[test]
fn every_reported_name_compiles() {
    use agent_protocol::seccomp as features;
    for arch in features::ARCHITECTURES {
        let json = format!(r#"{{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["{arch}"]}}"#);
        compile(&profile(&json)).unwrap_or_else(|e| panic!("{arch}: {e}"));
    }
    for action in features::ACTIONS {
        let json = format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": ["getppid"], "action": "{action}"}}]}}"#
        );
        compile(&profile(&json)).unwrap_or_else(|e| panic!("{action}: {e}"));
        let json = format!(r#"{{"defaultAction": "{action}"}}"#);
        compile(&profile(&json)).unwrap_or_else(|e| panic!("default {action}: {e}"));
    }
    for op in features::OPERATORS {
        let json = format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": ["dup"], "action": "SCMP_ACT_LOG",
                "args": [{{"index": 0, "value": 3, "op": "{op}"}}]}}]}}"#
        );
        compile(&profile(&json)).unwrap_or_else(|e| panic!("{op}: {e}"));
    }
    for flag in features::SUPPORTED_FLAGS {
        let json = format!(r#"{{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["{flag}"]}}"#);
        compile(&profile(&json)).unwrap_or_else(|e| panic!("{flag}: {e}"));
    }
}

#[test]
fn program_round_trips_through_json_and_is_validated() {
    let prog = compile(&engine_profile("docker")).expect("compiles");
    let json = serde_json::to_string(&prog).expect("serialises");
    let back: Program = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back.instructions(), prog.instructions());
    assert_eq!(back.flags(), prog.flags());
    let same = back
        .filter
        .iter()
        .zip(&prog.filter)
        .all(|(a, b)| (a.code, a.jt, a.jf, a.k) == (b.code, b.jt, b.jf, b.k));
    assert!(same);
    assert!(serde_json::from_str::<Program>(r#"{"filter": [], "flags": 0}"#).is_err());
    assert!(
        serde_json::from_str::<Program>(r#"{"filter": [[6, 0, 0, 2147418112]], "flags": 8}"#)
            .is_err()
    );
    assert!(Program::from_bpf_bytes(&[0; 12], 0).is_err());
}
