//! `create` / `start` / `kill` / `delete` against the fake VMM: the sandbox
//! process outlives `create`, holds the stdio it was given, and exits like
//! the workload; the commands guard the lifecycle like runc's.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{text, Case};

impl Case {
    /// `hull --root <root> ARGS` with the fake VMM.
    pub(crate) fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hull"));
        cmd.arg("--root")
            .arg(self.root())
            .args(args)
            .env("HULL_VMM", std::env::current_exe().unwrap())
            .env("HULL_KERNEL", "/dev/null")
            .env("HULL_INITRD", "/dev/null")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    pub(crate) fn run_cli(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = self.cli(args).output().unwrap();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    }

    pub(crate) fn status(&self) -> String {
        let (code, out, err) = self.run_cli(&["state", &self.id]);
        assert_eq!(code, Some(0), "{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        v["status"].as_str().unwrap().to_owned()
    }

    /// `hull create` with stdin from a pipe we keep and stdout/stderr into
    /// files; returns the sandbox pid and our end of its stdin.
    pub(crate) fn create(&self) -> (i32, std::process::ChildStdin) {
        let out = std::fs::File::create(self.tmp.join("out")).unwrap();
        let err = std::fs::File::create(self.tmp.join("err")).unwrap();
        let pid_file = self.tmp.join("pid");
        let bundle = self.tmp.join("bundle");
        let mut child = self
            .cli(&["create", "--bundle", bundle.to_str().unwrap()])
            .args(["--pid-file", pid_file.to_str().unwrap(), &self.id])
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "create: {status}: {}", self.file("err"));
        let pid = std::fs::read_to_string(pid_file).unwrap().parse().unwrap();
        (pid, stdin)
    }

    pub(crate) fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.tmp.join(name)).unwrap_or_default()
    }
}

/// Waits for our (adopted) descendant `pid`.
pub fn wait_pid(pid: i32) -> std::process::ExitStatus {
    let mut status = 0;
    // SAFETY: waitpid with a valid status pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid: {}", std::io::Error::last_os_error());
    std::process::ExitStatus::from_raw(status)
}

/// Makes this process the reaper of orphaned descendants, as conmon and
/// containerd's shim are.
pub fn become_subreaper() {
    nix::sys::prctl::set_child_subreaper(true).unwrap();
}

pub fn create_start_wait_delete() {
    let case = Case::sh(
        "lifecycle",
        "echo started; read x; echo got $x; echo oops >&2; exit 3",
    );
    let (pid, stdin) = case.create();
    assert_eq!(case.status(), "created");
    let (code, out, _) = case.run_cli(&["state", &case.id]);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["pid"], pid);
    assert_eq!(case.file("out"), "", "the program ran before start");
    let (code, _, err) = case.run_cli(&["delete", &case.id]);
    assert_eq!(code, Some(0), "a created container is deleted: {err}");
    assert!(!case.root().join(&case.id).exists());
    // The sandbox was killed by delete.
    assert_eq!(wait_pid(pid).signal(), Some(libc::SIGKILL));

    let (pid, mut stdin2) = case.create();
    drop(stdin);
    let (code, _, err) = case.run_cli(&["start", &case.id]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(case.status(), "running");
    let (code, _, err) = case.run_cli(&["start", &case.id]);
    assert_eq!(
        (code, err.as_str()),
        (Some(1), "hull: cannot start an already running container\n")
    );
    let (code, _, err) = case.run_cli(&["delete", &case.id]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        format!(
            "hull: cannot delete container {} that is not stopped: running\n",
            case.id
        )
    );
    stdin2.write_all(b"hello\n").unwrap();
    drop(stdin2);
    let status = wait_pid(pid);
    assert_eq!(status.code(), Some(3), "{status}");
    assert_eq!(case.file("out"), "started\ngot hello\n");
    assert_eq!(case.file("err"), "oops\n");
    assert_eq!(case.status(), "stopped");
    let (code, _, err) = case.run_cli(&["kill", &case.id, "KILL"]);
    assert_eq!(
        (code, err.as_str()),
        (Some(1), "hull: container not running\n")
    );
    let (code, _, err) = case.run_cli(&["start", &case.id]);
    assert_eq!(
        (code, err.as_str()),
        (Some(1), "hull: cannot start a container that has stopped\n")
    );
    let (code, _, err) = case.run_cli(&["delete", &case.id]);
    assert_eq!(code, Some(0), "{err}");
    case.assert_clean();
    let (code, _, err) = case.run_cli(&["delete", &case.id]);
    assert_eq!(
        (code, err.as_str()),
        (Some(1), "hull: container does not exist\n")
    );
}

pub fn kill_re_raises_the_signal() {
    let case = Case::sh("kill", "echo up; sleep 100");
    let (pid, _stdin) = case.create();
    let (code, _, err) = case.run_cli(&["start", &case.id]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = case.run_cli(&["kill", &case.id, "nosuch"]);
    assert_eq!(
        (code, err.as_str()),
        (Some(1), "hull: unknown signal \"nosuch\"\n")
    );
    let (code, _, err) = case.run_cli(&["kill", &case.id, "SIGTERM"]);
    assert_eq!(code, Some(0), "{err}");
    let status = wait_pid(pid);
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status}");
    assert_eq!(case.status(), "stopped");
    let (code, _, err) = case.run_cli(&["delete", &case.id]);
    assert_eq!(code, Some(0), "{err}");
    case.assert_clean();
}

pub fn force_delete_and_bad_input() {
    let case = Case::sh("force", "sleep 100");
    let (pid, _stdin) = case.create();
    let (code, _, err) = case.run_cli(&["start", &case.id]);
    assert_eq!(code, Some(0), "{err}");
    let bundle = case.tmp.join("bundle");
    let (code, _, err) = case.run_cli(&["create", "--bundle", bundle.to_str().unwrap(), &case.id]);
    assert_eq!(
        (code, err),
        (
            Some(1),
            format!("hull: container with id exists: {}\n", case.id)
        )
    );
    let (code, _, err) = case.run_cli(&["delete", "--force", &case.id]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(wait_pid(pid).signal(), Some(libc::SIGKILL));
    case.assert_clean();
    // A missing rootfs, a malformed config: refused, nothing made.
    std::fs::remove_dir_all(bundle.join("rootfs")).unwrap();
    let (code, _, err) = case.run_cli(&["create", "--bundle", bundle.to_str().unwrap(), &case.id]);
    assert_eq!(code, Some(1));
    assert!(err.contains("root.path"), "{err}");
    std::fs::write(bundle.join("config.json"), "{not json").unwrap();
    let (code, _, err) = case.run_cli(&["create", "--bundle", bundle.to_str().unwrap(), &case.id]);
    assert_eq!(code, Some(1));
    assert!(err.contains("config.json is malformed"), "{err}");
    assert!(!case.root().join(&case.id).exists());
    for args in [
        vec!["start", "ghost"],
        vec!["kill", "ghost"],
        vec!["pause", "ghost"],
    ] {
        let (code, _, err) = case.run_cli(&args);
        assert_eq!(
            (code, err.as_str()),
            (Some(1), "hull: container does not exist\n"),
            "{args:?}"
        );
    }
}

pub fn a_failing_sandbox_reports_to_create() {
    let case = Case::sh("create-fail", "true");
    let bundle = case.tmp.join("bundle");
    let out = case
        .cli(&["create", "--bundle", bundle.to_str().unwrap(), &case.id])
        .env("FAKE_VMM_MODE", "panic_at_boot")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("the VM exited before its agent was ready"),
        "{err}"
    );
    assert!(err.contains("Unable to mount root fs"), "{err}");
    case.assert_clean();
}

/// A bundle whose spec has `hooks` (each writes its stdin to `<kind>.json`
/// in the case's directory); `extra` adds a failing or slow one.
fn hooked(name: &str, extra: Option<(&str, Value)>) -> Case {
    let case = Case::sh(name, "echo ran");
    let path = case.tmp.join("bundle/config.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let dir = case.tmp.display().to_string();
    let hook = |kind: &str| {
        serde_json::json!([{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {dir}/{kind}.json; echo $HOOK_ENV > {dir}/{kind}.env")],
            "env": ["HOOK_ENV=from-spec"],
        }])
    };
    let mut hooks = serde_json::Map::new();
    for kind in [
        "createRuntime",
        "createContainer",
        "prestart",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        hooks.insert(kind.into(), hook(kind));
    }
    if let Some((kind, h)) = extra {
        hooks[kind].as_array_mut().unwrap().push(h);
    }
    config["hooks"] = Value::Object(hooks);
    std::fs::write(&path, config.to_string()).unwrap();
    case
}

pub fn hooks_run_at_their_steps() {
    let case = hooked("hooks", None);
    let hook_state = |kind: &str| -> Value {
        let text = case.file(&format!("{kind}.json"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{kind}: {e}: {text:?}"))
    };
    let (pid, stdin) = case.create();
    drop(stdin);
    // prestart and createRuntime run before the VM boots (createRuntime in
    // state `creating`, as runc runs it; prestart told `created`, as crun
    // and runtime-tools have it), createContainer once the container exists.
    for (kind, status) in [
        ("prestart", "created"),
        ("createRuntime", "creating"),
        ("createContainer", "created"),
    ] {
        let s = hook_state(kind);
        assert_eq!(s["id"], case.id.as_str(), "{kind}: {s}");
        assert_eq!(s["pid"], pid, "{kind}: {s}");
        assert_eq!(s["status"], status, "{kind}: {s}");
        assert_eq!(case.file(&format!("{kind}.env")), "from-spec\n");
    }
    assert_eq!(case.file("startContainer.json"), "", "ran before start");
    let (code, _, err) = case.run_cli(&["start", &case.id]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(hook_state("startContainer")["status"], "created");
    assert_eq!(hook_state("poststart")["status"], "running");
    assert_eq!(wait_pid(pid).code(), Some(0));
    assert_eq!(case.file("poststop.json"), "", "ran before delete");
    let (code, _, err) = case.run_cli(&["delete", &case.id]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(hook_state("poststop")["status"], "stopped");
    case.assert_clean();
}

pub fn a_failing_or_slow_hook_fails_create_and_cleans_up() {
    let failing =
        serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "echo no way >&2; exit 3"]});
    let slow = serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "100"], "timeout": 1});
    for (name, kind, hook, want) in [
        (
            "hook-fail",
            "prestart",
            failing,
            "prestart hook /bin/sh failed: exit status 3",
        ),
        ("hook-slow", "createRuntime", slow, "timed out after 1s"),
    ] {
        let case = hooked(name, Some((kind, hook)));
        let bundle = case.tmp.join("bundle");
        let started = std::time::Instant::now();
        let (code, _, err) =
            case.run_cli(&["create", "--bundle", bundle.to_str().unwrap(), &case.id]);
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains(want), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
        case.assert_clean();
    }
    // A failing startContainer hook fails the start.
    let failing = serde_json::json!({"path": "/bin/false"});
    let case = hooked("hook-start", Some(("startContainer", failing)));
    let (pid, _stdin) = case.create();
    let (code, _, err) = case.run_cli(&["start", &case.id]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("startContainer hook /bin/false failed"),
        "{err}"
    );
    assert_eq!(case.file("out"), "", "the program ran");
    let (code, _, err) = case.run_cli(&["delete", "--force", &case.id]);
    assert_eq!(code, Some(0), "{err}");
    assert!(wait_pid(pid).signal().is_some());
    case.assert_clean();
}
