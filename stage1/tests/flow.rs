//! The entrypoints end to end against a fake hull (`tests/fake-hull`: each
//! container's process runs on the host, daemonized as `hull create`
//! daemonizes its sandbox), called as rkt's stage0 calls them: in the pod
//! directory, with its arguments. `--net=none` only (no root needed).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const UUID_PREFIX: &str = "0f0e0d0c-0000-4000-8000-";
const WAIT_LIMIT_MS: u64 = 30_000;

struct Pod {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    root: PathBuf,
    uuid: String,
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_hull-stage1")
}

fn fake_hull() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-hull")
}

/// A pod directory as stage0 prepares it; `apps`: (name, app section).
fn pod(n: u32, apps: &[(&str, &str)], mutable: bool) -> Pod {
    let tmp = tempfile::tempdir().unwrap();
    let uuid = format!("{UUID_PREFIX}{n:012}");
    let dir = tmp.path().join("pods/run").join(&uuid);
    let s1 = dir.join("stage1/rootfs");
    std::fs::create_dir_all(s1.join("pause/rootfs/bin")).unwrap();
    std::fs::write(s1.join("pause/rootfs/bin/busybox"), "").unwrap();
    let mut ras = Vec::new();
    for (name, app) in apps {
        let a = s1.join("opt/stage2").join(name);
        std::fs::create_dir_all(a.join("rootfs/etc")).unwrap();
        std::fs::write(a.join("rootfs/etc/passwd"), "root:x:0:0::/:/bin/sh\n").unwrap();
        let m = format!(r#"{{"acKind":"ImageManifest","name":"example.com/{name}","app":{app}}}"#);
        std::fs::write(a.join("manifest"), m).unwrap();
        ras.push(format!(
            r#"{{"name":"{name}","image":{{"name":"example.com/{name}"}}}}"#
        ));
    }
    let pm = format!(
        r#"{{"acKind":"PodManifest","apps":[{}],"annotations":[{{"name":"coreos.com/rkt/stage1/mutable","value":"{mutable}"}}]}}"#,
        ras.join(",")
    );
    std::fs::write(dir.join("pod"), pm).unwrap();
    let root = tmp.path().join("hull-root");
    Pod {
        _tmp: tmp,
        dir,
        root,
        uuid,
    }
}

impl Pod {
    fn cmd(&self, entry: &str, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg(entry)
            .args(args)
            .current_dir(&self.dir)
            .env("HULL_BIN", fake_hull())
            .env("HULL_RKT_ROOT", &self.root)
            .stdin(Stdio::null());
        c
    }
    fn spawn_run(&self, flags: &[&str]) -> Child {
        let mut args = flags.to_vec();
        args.push(&self.uuid);
        self.cmd("run", &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
    fn call(&self, entry: &str, args: &[&str]) -> Output {
        self.cmd(entry, args).output().unwrap()
    }
    fn status(&self, app: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join("stage1/rootfs/rkt/status").join(app)).ok()
    }
    fn containers(&self) -> usize {
        std::fs::read_dir(&self.root)
            .map(|d| d.count())
            .unwrap_or(0)
    }
    fn wait_for(&self, what: &str, f: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_millis(WAIT_LIMIT_MS);
        while !f() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn finish(child: Child) -> Output {
    let pid = child.id();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(WAIT_LIMIT_MS));
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    });
    let out = child.wait_with_output().unwrap();
    drop(killer);
    out
}

#[test]
fn the_first_failing_app_ends_the_pod_with_its_status() {
    let p = pod(
        1,
        &[
            (
                "fails",
                r#"{"exec":["/bin/sh","-c","echo out-of-fails; exit 3"]}"#,
            ),
            ("sleeps", r#"{"exec":["/bin/sleep","1000"]}"#),
        ],
        false,
    );
    let out = finish(p.spawn_run(&["--net=none", "--hostname=h"]));
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("out-of-fails"));
    assert_eq!(p.status("fails").as_deref(), Some("3"));
    assert_eq!(p.status("sleeps").as_deref(), Some("143"));
    let pid = std::fs::read_to_string(p.dir.join("pid")).unwrap();
    assert!(pid.parse::<u32>().is_ok(), "{pid:?}");
    assert_eq!(p.containers(), 0);
}

#[test]
fn stop_ends_the_pod_and_gc_is_idempotent() {
    let p = pod(2, &[("sleeps", r#"{"exec":["/bin/sleep","1000"]}"#)], false);
    let run = p.spawn_run(&["--net=none"]);
    p.wait_for("the app", || {
        p.dir.join("stage1/rootfs/hull/apps/sleeps/pid").exists()
    });
    let enter = p.call(
        "enter",
        &["--pid=1", "--appname=sleeps", "--", "sh", "-c", "exit 7"],
    );
    assert_eq!(enter.status.code(), Some(7));
    assert!(p.call("stop", &[&p.uuid]).status.success());
    let out = finish(run);
    assert_eq!(out.status.code(), Some(143));
    assert_eq!(p.status("sleeps").as_deref(), Some("143"));
    assert!(p.call("gc", &[&p.uuid]).status.success());
    assert!(p
        .call("gc", &["--local-config", "/etc/rkt", &p.uuid])
        .status
        .success());
    assert!(!p.dir.join("stage1/rootfs/hull").exists());
}

#[test]
fn gc_after_a_sigkilled_run_removes_its_containers() {
    let p = pod(3, &[("sleeps", r#"{"exec":["/bin/sleep","1000"]}"#)], false);
    let mut run = p.spawn_run(&["--net=none"]);
    p.wait_for("the app", || {
        p.dir.join("stage1/rootfs/hull/apps/sleeps/pid").exists()
    });
    run.kill().unwrap();
    run.wait().unwrap();
    assert_eq!(p.containers(), 2);
    assert!(p.call("gc", &[&p.uuid]).status.success());
    assert_eq!(p.containers(), 0);
}

#[test]
fn a_mutable_pod_takes_an_app_added_later() {
    let p = pod(4, &[("sleeps", r#"{"exec":["/bin/sleep","1000"]}"#)], true);
    let run = p.spawn_run(&["--net=none", "--mutable"]);
    p.wait_for("the pod", || p.dir.join("pid").exists());
    let late = p.dir.join("stage1/rootfs/opt/stage2/late");
    std::fs::create_dir_all(late.join("rootfs")).unwrap();
    std::fs::write(
        late.join("manifest"),
        r#"{"acKind":"ImageManifest","name":"l","app":{"exec":["/bin/sh","-c","exit 5"]}}"#,
    )
    .unwrap();
    let pm = std::fs::read_to_string(p.dir.join("pod")).unwrap();
    let pm = pm.replace(r#""apps":["#, r#""apps":[{"name":"late"},"#);
    std::fs::write(p.dir.join("pod"), pm).unwrap();
    let add = p.call(
        "app-add",
        &["--debug=false", &format!("--uuid={}", p.uuid), "--app=late"],
    );
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    assert!(p
        .call("app-start", &["--debug=false", "--app=late"])
        .status
        .success());
    p.wait_for("the added app's status", || p.status("late").is_some());
    assert_eq!(p.status("late").as_deref(), Some("5"));
    assert!(p
        .call("app-rm", &["--debug=false", "--app=late"])
        .status
        .success());
    assert!(p.call("stop", &["--force", &p.uuid]).status.success());
    finish(run);
    assert_eq!(p.containers(), 0);
}

#[test]
fn bad_input_fails_before_anything_is_made() {
    let p = pod(5, &[("a", r#"{"exec":["/bin/true"]}"#)], false);
    let out = p.call("run", &["--no-such-flag", &p.uuid]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown flag --no-such-flag"));
    std::fs::write(p.dir.join("pod"), "{\"acKind\": ").unwrap();
    let out = p.call("run", &["--net=none", &p.uuid]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("malformed pod manifest"));
    let p = pod(6, &[("a", r#"{"exec":["/bin/true"]}"#)], false);
    std::fs::remove_dir_all(p.dir.join("stage1/rootfs/opt/stage2/a/rootfs")).unwrap();
    let out = p.call("run", &["--net=none", &p.uuid]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is missing"));
    assert_eq!(p.containers(), 0);
}
