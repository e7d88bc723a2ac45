use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use crate::testutil::TempDir;

/// A hook that runs `script` with /bin/sh (the script is an argument, not
/// the executable: writing an executable while other test threads fork can
/// make exec fail with ETXTBSY).
fn sh(script: &str) -> Hook {
    Hook {
        path: "/bin/sh".into(),
        args: vec!["sh".into(), "-c".into(), script.into()],
        env: vec![],
        timeout_secs: None,
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn hooks_run_in_order_with_the_state_on_stdin() {
    let dir = TempDir::new("hooks-order");
    let log = dir.path().join("log");
    let hooks: Vec<Hook> = (1..=3)
        .map(|n| {
            sh(&format!(
                "read -r state; echo \"{n} $state\" >> {}",
                log.display()
            ))
        })
        .collect();
    run_hooks(HookKind::Prestart, &hooks, b"{\"id\":\"c1\"}\n").unwrap();
    assert_eq!(
        read(&log),
        "1 {\"id\":\"c1\"}\n2 {\"id\":\"c1\"}\n3 {\"id\":\"c1\"}\n"
    );
}

#[test]
fn the_environment_is_exactly_the_given_one() {
    let dir = TempDir::new("hooks-env");
    let out = dir.path().join("env");
    let mut hook = sh(&format!("/usr/bin/env > {}", out.display()));
    hook.env = vec!["A=1".into(), "B=two=2".into(), "NOEQUALS".into()];
    run_hooks(HookKind::CreateRuntime, &[hook], b"{}").unwrap();
    let mut lines: Vec<String> = read(&out).lines().map(str::to_string).collect();
    // sh may export PWD (and nothing else) on its own.
    lines.retain(|l| !l.starts_with("PWD="));
    lines.sort();
    assert_eq!(lines, ["A=1", "B=two=2"]);
}

#[test]
fn args_are_the_whole_argv_with_argv0() {
    let dir = TempDir::new("hooks-argv");
    let out = dir.path().join("argv");
    let hook = Hook {
        path: "/bin/sh".into(),
        args: vec![
            "my-hook-name".into(),
            "-c".into(),
            format!("tr '\\0' ' ' < /proc/$$/cmdline > {}", out.display()),
        ],
        env: vec![],
        timeout_secs: None,
    };
    run_hooks(HookKind::CreateContainer, &[hook], b"{}").unwrap();
    assert!(read(&out).starts_with("my-hook-name -c "), "{}", read(&out));

    // No args: argv is [path].
    let out2 = dir.path().join("argv2");
    let script = dir.path().join("script");
    std::fs::write(&script, format!("echo \"$0\" > {}\n", out2.display())).unwrap();
    let hook = Hook {
        path: "/bin/sh".into(),
        args: vec![],
        env: vec![],
        timeout_secs: None,
    };
    // `sh` without args reads its script from stdin: feed it as the state.
    let state = std::fs::read(&script).unwrap();
    run_hooks(HookKind::StartContainer, &[hook], &state).unwrap();
    assert_eq!(read(&out2).trim(), "/bin/sh");
}

#[test]
fn a_failing_hook_stops_the_list_and_names_kind_path_status_and_stderr() {
    let dir = TempDir::new("hooks-fail");
    let marker = dir.path().join("ran");
    let hooks = [
        sh("echo out-text; echo first line >&2; echo boom >&2; exit 3"),
        sh(&format!("touch {}", marker.display())),
    ];
    let e = run_hooks(HookKind::Prestart, &hooks, b"{}").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("prestart hook /bin/sh failed: exit status 3"),
        "{msg}"
    );
    assert!(msg.contains("stderr: first line\nboom"), "{msg}");
    assert!(msg.contains("stdout: out-text"), "{msg}");
    assert!(!marker.exists(), "the second hook must not run");
}

#[test]
fn a_missing_program_is_a_spawn_error() {
    let hook = Hook {
        path: "/nonexistent/hull-hook".into(),
        args: vec![],
        env: vec![],
        timeout_secs: None,
    };
    let e = run_hooks(HookKind::CreateRuntime, &[hook], b"{}").unwrap_err();
    assert!(matches!(e, HookError::Spawn { .. }), "{e}");
    assert!(e
        .to_string()
        .contains("createRuntime hook /nonexistent/hull-hook"));
}

#[test]
fn a_signal_death_is_reported() {
    let e = run_hooks(HookKind::Prestart, &[sh("kill -TERM $$")], b"{}").unwrap_err();
    assert!(e.to_string().contains("killed by signal 15"), "{e}");
}

#[test]
fn warn_only_runs_every_hook_and_returns_the_failures() {
    let dir = TempDir::new("hooks-warn");
    let marker = dir.path().join("ran");
    let hooks = [
        sh("exit 1"),
        sh(&format!("touch {}", marker.display())),
        sh("exit 2"),
    ];
    let errors = run_hooks_warn(HookKind::Poststop, &hooks, b"{}");
    assert_eq!(errors.len(), 2);
    assert!(errors[1].to_string().contains("exit status 2"));
    assert!(marker.exists());
    assert!(run_hooks_warn(HookKind::Poststart, &[sh("true")], b"{}").is_empty());
}

/// Whether `pid` is gone (or a zombie nobody reaped yet).
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

#[test]
fn a_timeout_kills_the_hook_and_its_process_group_quickly() {
    let dir = TempDir::new("hooks-timeout");
    let pidfile = dir.path().join("pid");
    let mut hook = sh(&format!(
        "sleep 100 & echo $! > {}; wait",
        pidfile.display()
    ));
    hook.timeout_secs = Some(1);
    let start = Instant::now();
    let e = run_hooks(HookKind::Prestart, &[hook], b"{}").unwrap_err();
    let took = start.elapsed();
    assert!(matches!(e, HookError::TimedOut { secs: 1, .. }), "{e}");
    assert!(e.to_string().contains("timed out after 1s"), "{e}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let sleep_pid: i32 = read(&pidfile).trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dead(sleep_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(dead(sleep_pid), "sleep {sleep_pid} survived the timeout");
}

#[test]
fn a_hook_within_its_timeout_succeeds() {
    let mut hook = sh("cat > /dev/null; exit 0");
    hook.timeout_secs = Some(30);
    let start = Instant::now();
    run_hooks(HookKind::Poststart, &[hook], &vec![b'x'; 1 << 20]).unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_hook_that_ignores_a_large_state_does_not_hang() {
    run_hooks(HookKind::Prestart, &[sh("exit 0")], &vec![b'x'; 1 << 20]).unwrap();
}

#[test]
fn output_is_bounded_to_its_tail() {
    let e = run_hooks(
        HookKind::Prestart,
        &[sh(
            "i=0; while [ $i -lt 2000 ]; do echo line$i >&2; i=$((i+1)); done; exit 1",
        )],
        b"{}",
    )
    .unwrap_err();
    let HookError::Failed { output, .. } = e else {
        panic!("{e}")
    };
    assert!(output.stderr.len() <= OUTPUT_TAIL_BYTES);
    assert!(output.stderr.ends_with("line1999\n"));
    assert!(!output.stderr.contains("line1\n"));
}
