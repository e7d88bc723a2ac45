//! `hull run` end to end on the host side, with `hull-vmm` replaced by this
//! very binary acting as a fake VMM and agent (see `fake_vmm.rs`): the real
//! `hull` binary, its state directory, mount namespace and binds, vsock
//! handshakes, control and stream connections, signal forwarding, error
//! reports and cleanup. Needs CAP_SYS_ADMIN (for the mount namespace);
//! skips without it.

mod fake_vmm;
mod image_run;
mod lifecycle;
mod standin;

use std::io::{Read, Write};
use std::panic;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

/// Longest a single `hull run` may take before the test kills it.
const DEADLINE: Duration = Duration::from_secs(60);

struct Case {
    tmp: PathBuf,
    id: String,
}

impl Case {
    fn new(name: &str, process: Value, mounts: Value) -> Self {
        let tmp = std::env::temp_dir().join(format!("hull-run-flow-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(tmp.join("bundle/rootfs")).unwrap();
        std::fs::create_dir_all(tmp.join("hostdir")).unwrap();
        std::fs::write(tmp.join("bundle/rootfs/marker"), "from the rootfs\n").unwrap();
        std::fs::write(tmp.join("hostdir/file"), "from a bind mount\n").unwrap();
        let config = json!({
            "ociVersion": "1.0.2",
            "process": process,
            "root": {"path": "rootfs"},
            "mounts": mounts,
        });
        std::fs::write(tmp.join("bundle/config.json"), config.to_string()).unwrap();
        Self {
            tmp,
            id: format!("{name}-{}", std::process::id()),
        }
    }

    fn sh(name: &str, script: &str) -> Self {
        Self::new(
            name,
            json!({"args": ["sh", "-c", script], "env": ["PATH=/usr/bin:/bin"], "cwd": "/"}),
            json!([]),
        )
    }

    fn root(&self) -> PathBuf {
        self.tmp.join("state")
    }

    fn hull(&self, mode: &str, extra: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hull"));
        cmd.arg("--root")
            .arg(self.root())
            .args(["run", "--bundle"])
            .arg(self.tmp.join("bundle"))
            .args(extra)
            .arg(&self.id)
            .env("HULL_VMM", std::env::current_exe().unwrap())
            .env("HULL_KERNEL", "/dev/null")
            .env("HULL_INITRD", "/dev/null")
            .env("FAKE_VMM_MODE", mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Nothing of the run is left: no state directory, no mount.
    fn assert_clean(&self) {
        assert!(
            !self.root().join(&self.id).exists(),
            "state directory left behind"
        );
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(self.tmp.to_str().unwrap()),
            "a mount leaked into the host's namespace"
        );
        assert!(self.tmp.join("bundle/rootfs/marker").exists());
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

/// Feeds `input`, waits (killing it after [`DEADLINE`]) and collects output.
fn finish(mut child: Child, input: &[u8]) -> Output {
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let out = child.wait_with_output().unwrap();
        let _ = tx.send(());
        out
    });
    if rx.recv_timeout(DEADLINE).is_err() {
        // The child is not reaped yet.
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        panic!("hull run hung: {:?}", waiter.join().unwrap());
    }
    waiter.join().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn runs_the_process_with_its_stdio_mounts_and_exit_code() {
    let case = Case::new(
        "stdio",
        json!({"args": ["sh", "-c",
            "cat marker ../mounts/1/hostdir/file; echo oops >&2; read line; echo \"got $line\"; exit 3"],
            "env": ["PATH=/usr/bin:/bin"], "cwd": "/"}),
        json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/data", "type": "bind", "source": "../hostdir", "options": ["rbind"]},
        ]),
    );
    // The process runs in the share's rootfs bind; the spec's mount 1 (a
    // bind of ../hostdir) is the share's mounts/1/hostdir next to it.
    let out = finish(case.hull("", &["--timings"]).spawn().unwrap(), b"hello\n");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(stdout, "from the rootfs\nfrom a bind mount\ngot hello\n");
    assert!(stderr.starts_with("oops\n"), "{stderr}");
    let timings: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    for phase in [
        "vm_boot_ms",
        "agent_connect_ms",
        "container_create_ms",
        "process_start_ms",
        "exit_delivered_ms",
        "teardown_ms",
        "total_ms",
    ] {
        assert!(
            timings[phase].as_f64().is_some(),
            "{phase} missing: {timings}"
        );
    }
    case.assert_clean();
}

fn an_agent_error_is_reported() {
    let case = Case::new(
        "create-fails",
        json!({"args": ["missing-binary"]}),
        json!([]),
    );
    let out = finish(case.hull("", &[]).spawn().unwrap(), b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "hull: create failed in the agent: executable file not found in $PATH: missing-binary\n"
    );
    case.assert_clean();
}

fn a_vm_that_dies_at_boot_is_reported_with_its_console() {
    let case = Case::sh("boot-panic", "true");
    let out = finish(case.hull("panic_at_boot", &[]).spawn().unwrap(), b"");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("exited before its agent was ready"),
        "{stderr}"
    );
    assert!(
        stderr.contains("| Kernel panic - not syncing: VFS"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hull-vmm reported: guest reset the machine"),
        "the end event names the reason: {stderr}"
    );
    case.assert_clean();
}

fn a_vm_that_dies_while_the_process_runs_is_reported() {
    let case = Case::sh("wait-panic", "sleep 30");
    let out = finish(case.hull("panic_in_wait", &[]).spawn().unwrap(), b"");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("hull: sandbox VM exited unexpectedly (exit status: 1)"),
        "{stderr}"
    );
    assert!(stderr.contains("| Kernel panic - not syncing: Attempted to kill init!"));
    case.assert_clean();
}

fn a_vm_that_resets_while_the_process_runs_is_reported() {
    let case = Case::sh("wait-reset", "sleep 30");
    let out = finish(case.hull("reset_in_wait", &[]).spawn().unwrap(), b"");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("hull: sandbox VM exited unexpectedly (exit status: 0)"),
        "{stderr}"
    );
    case.assert_clean();
}

fn an_agent_that_drops_the_connection_is_stopped() {
    let case = Case::sh("wait-dropped", "sleep 30");
    let out = finish(case.hull("drop_wait", &[]).spawn().unwrap(), b"");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("hull: lost the connection to the agent, VM stopped"),
        "{stderr}"
    );
    case.assert_clean();
}

/// Reads `child`'s stdout until `line` arrives.
fn wait_for_line(child: &mut Child, line: &str) {
    let out = child.stdout.as_mut().unwrap();
    let mut seen = Vec::new();
    let mut b = [0u8; 1];
    while !text(&seen).ends_with(&format!("{line}\n")) {
        assert_eq!(
            out.read(&mut b).unwrap(),
            1,
            "no {line:?} in {:?}",
            text(&seen)
        );
        seen.push(b[0]);
    }
}

fn sigterm_is_forwarded_to_the_container() {
    let case = Case::sh(
        "sigterm",
        "trap 'echo got TERM; exit 7' TERM; echo started; while :; do sleep 0.05; done",
    );
    let mut child = case.hull("", &[]).spawn().unwrap();
    wait_for_line(&mut child, "started");
    // `child` is alive and not reaped.
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = finish(child, b"");
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "got TERM\n");
    case.assert_clean();
}

/// `hull --root <case root> ARGS`: status, stdout, stderr.
fn hull_cli(case: &Case, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hull"))
        .arg("--root")
        .arg(case.root())
        .args(args)
        .output()
        .unwrap();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

fn state_and_list_see_a_running_container() {
    let case = Case::sh(
        "state",
        "trap 'exit 0' TERM; echo started; while :; do sleep 0.05; done",
    );
    let mut child = case.hull("", &[]).spawn().unwrap();
    wait_for_line(&mut child, "started");
    // The status is recorded right after the start call returns.
    let mut state = Value::Null;
    for _ in 0..200 {
        let (code, stdout, stderr) = hull_cli(&case, &["state", &case.id]);
        assert_eq!(code, Some(0), "{stderr}");
        state = serde_json::from_str(&stdout).unwrap();
        if state["status"] == "running" {
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(state["status"], "running", "{state}");
    assert_eq!(state["id"], case.id.as_str());
    assert_eq!(state["pid"], child.id());
    assert_eq!(state["ociVersion"], "1.0.2");
    let bundle = std::fs::canonicalize(case.tmp.join("bundle")).unwrap();
    assert_eq!(state["bundle"], bundle.to_str().unwrap());
    let (code, stdout, _) = hull_cli(&case, &["list", "--quiet"]);
    assert_eq!((code, stdout), (Some(0), format!("{}\n", case.id)));
    let (_, stdout, _) = hull_cli(&case, &["list", "--format", "json"]);
    let list: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(list[0]["status"], "running", "{list}");
    // `child` is alive and not reaped.
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = finish(child, b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    case.assert_clean();
    let (code, _, stderr) = hull_cli(&case, &["state", &case.id]);
    assert_eq!(
        (code, stderr.as_str()),
        (Some(1), "hull: container does not exist\n")
    );
}

fn sigint_during_boot_aborts_the_run() {
    let case = Case::sh("sigint-boot", "true");
    let child = case.hull("hang_at_boot", &[]).spawn().unwrap();
    // Wait until the VM is up (its socket path is in the state directory).
    let log = case.root().join(&case.id).join("console.log");
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Linux version")) {
        thread::sleep(Duration::from_millis(10));
    }
    // `child` is alive and not reaped.
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let out = finish(child, b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "hull: interrupted by SIGINT before the container started\n"
    );
    case.assert_clean();
}

fn an_existing_id_is_refused_and_left_alone() {
    let case = Case::sh("exists", "true");
    std::fs::create_dir_all(case.root().join(&case.id)).unwrap();
    let out = finish(case.hull("", &[]).spawn().unwrap(), b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!("hull: container {} already exists\n", case.id)
    );
    assert!(case.root().join(&case.id).is_dir());
}

fn terminal_mode_relays_one_stream_both_ways() {
    let case = Case::new(
        "tty",
        json!({"terminal": true, "args": ["sh", "-c", "read l; echo \"tty:$l\""],
               "env": ["PATH=/usr/bin:/bin"]}),
        json!([]),
    );
    let out = finish(case.hull("", &[]).spawn().unwrap(), b"typed\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "tty:typed\n");
    case.assert_clean();
}

fn can_make_mount_namespaces() -> bool {
    // unshare moves only the calling thread: use a throwaway one.
    thread::spawn(|| nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).is_ok())
        .join()
        .unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--kernel") {
        std::process::exit(fake_vmm::main(&args));
    }
    if !can_make_mount_namespaces() {
        println!("run_flow: skipped (no mount namespaces without CAP_SYS_ADMIN)");
        return;
    }
    lifecycle::become_subreaper();
    let cases: [(&str, fn()); 23] = [
        (
            "standin_namespaces",
            standin::the_pid_has_the_namespaces_the_spec_lists,
        ),
        (
            "standin_inherits",
            standin::unlisted_namespaces_are_the_runtimes,
        ),
        (
            "standin_killed",
            standin::killing_the_pid_ends_the_container,
        ),
        ("hooks", lifecycle::hooks_run_at_their_steps),
        (
            "hook_failures",
            lifecycle::a_failing_or_slow_hook_fails_create_and_cleans_up,
        ),
        ("lifecycle", lifecycle::create_start_wait_delete),
        ("kill_signal", lifecycle::kill_re_raises_the_signal),
        ("force_delete", lifecycle::force_delete_and_bad_input),
        (
            "create_fail",
            lifecycle::a_failing_sandbox_reports_to_create,
        ),
        ("state_and_list", state_and_list_see_a_running_container),
        (
            "runs_the_process",
            runs_the_process_with_its_stdio_mounts_and_exit_code,
        ),
        ("agent_error", an_agent_error_is_reported),
        (
            "vm_dies_at_boot",
            a_vm_that_dies_at_boot_is_reported_with_its_console,
        ),
        (
            "vm_dies_while_running",
            a_vm_that_dies_while_the_process_runs_is_reported,
        ),
        (
            "vm_resets_while_running",
            a_vm_that_resets_while_the_process_runs_is_reported,
        ),
        (
            "agent_drops_wait",
            an_agent_that_drops_the_connection_is_stopped,
        ),
        ("sigterm_forwarded", sigterm_is_forwarded_to_the_container),
        ("sigint_during_boot", sigint_during_boot_aborts_the_run),
        ("existing_id", an_existing_id_is_refused_and_left_alone),
        ("terminal_mode", terminal_mode_relays_one_stream_both_ways),
        (
            "image_run_rootfs",
            image_run::a_rootfs_runs_with_the_options,
        ),
        (
            "image_run_bad",
            image_run::bad_image_runs_are_refused_and_leave_nothing,
        ),
        (
            "image_run_layers",
            image_run::an_image_runs_and_its_layers_are_reused,
        ),
    ];
    let filter = args.iter().find(|a| !a.starts_with('-'));
    let mut failed = Vec::new();
    for (name, case) in cases {
        if filter.is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let ok = panic::catch_unwind(case).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        println!("failed: {failed:?}");
        std::process::exit(1);
    }
}
