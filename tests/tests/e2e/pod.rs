//! Pods: a sandbox container boots the VM; an app container that names it
//! (containerd's CRI annotations, namespace paths into its pid) joins that
//! VM instead of booting one.

use std::path::Path;

use hull_e2e::bundle::{write_config, Spec};
use hull_e2e::record_boot;
use hull_e2e::run::{assert_cleaned_up, state_root};
use serde_json::{json, Value};

use super::cli::{bundle, create, id, ok, run, status_of, subreaper, vmm_of, wait_file, wait_pid};

const TYPE: &str = "io.kubernetes.cri.container-type";
const SANDBOX: &str = "io.kubernetes.cri.sandbox-id";

fn ns(pid: i32, name: &str) -> String {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/{name}"));
    link.map(|l| l.display().to_string()).unwrap_or_default()
}

fn state(id: &str) -> Value {
    let text = std::fs::read_to_string(state_root().join(id).join("state.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn an_app_container_joins_its_sandboxs_vm() {
    subreaper();
    let sb_id = id("pod-sandbox");
    let mut sb_spec = Spec::new(&[
        "sh",
        "-c",
        "cat /proc/sys/kernel/random/boot_id; exec sleep 1000",
    ]);
    sb_spec.hostname = "pod-host".into();
    sb_spec.patch = json!({"annotations": {TYPE: "sandbox", SANDBOX: sb_id}});
    let sb = bundle("pod-sandbox", &sb_spec);
    let sb_pid = create(&sb.0, &sb.0.join("b"), &sb_id, &[]);
    record_boot(&format!("hull create {sb_id} (a pod's sandbox)"));
    ok(&["start", &sb_id]);
    let boot_id = wait_file(&sb.0.join("out"), "\n").trim().to_owned();
    let sb_pids: Vec<i32> = serde_json::from_str(&ok(&["ps", "--format", "json", &sb_id])).unwrap();
    let vmm = vmm_of(&sb_pids);

    // The app container: CRI's annotations, the sandbox's ipc, uts and
    // network namespaces by path, its own pid and mount namespaces.
    let app_id = id("pod-app");
    let mut app_spec = Spec::new(&[
        "sh",
        "-c",
        "cat /proc/sys/kernel/random/boot_id; hostname; echo pid $$",
    ]);
    let path = |t: &str| format!("/proc/{sb_pid}/ns/{t}");
    app_spec.patch = json!({
        "annotations": {TYPE: "container", SANDBOX: sb_id},
        "hostname": null,
        "linux": {"namespaces": [
            {"type": "pid"}, {"type": "mount"},
            {"type": "ipc", "path": path("ipc")},
            {"type": "uts", "path": path("uts")},
            {"type": "network", "path": path("net")},
        ]},
    });
    let app = bundle("pod-app", &app_spec);
    let app_pid = create(&app.0, &app.0.join("b"), &app_id, &[]);
    let app_state = state(&app_id);
    assert_eq!(app_state["hull"]["podSandbox"], sb_id.as_str());
    assert_eq!(
        app_state["hull"]["vmmPid"], 0,
        "the app container booted a VM"
    );
    assert_eq!(
        app_state["hull"]["vsockSocket"],
        state(&sb_id)["hull"]["vsockSocket"]
    );
    let app_pids: Vec<i32> =
        serde_json::from_str(&ok(&["ps", "--format", "json", &app_id])).unwrap();
    assert!(!app_pids.contains(&vmm), "{app_pids:?}");
    // Its pid is in the sandbox's ipc and uts namespaces, not its pid one.
    for t in ["ipc", "uts", "net"] {
        assert_eq!(ns(app_pid, t), ns(sb_pid, t), "{t}");
    }
    assert_ne!(ns(app_pid, "pid"), ns(sb_pid, "pid"));
    let on_share = state_root().join(&sb_id).join("share").join(&app_id);
    assert!(on_share.exists(), "{} missing", on_share.display());

    ok(&["start", &app_id]);
    assert_eq!(wait_pid(app_pid).code(), Some(0));
    let out = std::fs::read_to_string(app.0.join("out")).unwrap();
    assert_eq!(
        out,
        format!("{boot_id}\npod-host\npid 1\n"),
        "same VM, same UTS, own pid ns"
    );
    // The app's exit leaves the VM (and the sandbox) running.
    assert_eq!(status_of(&sb_id), "running");

    // A container joining the sandbox's pid namespace by path (Kubernetes'
    // shareProcessNamespace) sees the sandbox's processes: its pid 1 is the
    // sandbox's workload.
    let shared_id = id("pod-sharedpid");
    let mut shared_spec = Spec::new(&["sh", "-c", "tr '\\0' ' ' </proc/1/cmdline; echo"]);
    shared_spec.patch = json!({
        "annotations": {TYPE: "container", SANDBOX: sb_id},
        "hostname": null,
        "linux": {"namespaces": [
            {"type": "mount"},
            {"type": "pid", "path": path("pid")},
            {"type": "ipc", "path": path("ipc")},
            {"type": "uts", "path": path("uts")},
            {"type": "network", "path": path("net")},
        ]},
    });
    write_config(&app.0.join("b"), &shared_spec);
    let shared_pid = create(&app.0, &app.0.join("b"), &shared_id, &[]);
    assert_eq!(ns(shared_pid, "pid"), ns(sb_pid, "pid"), "the host pid too");
    ok(&["start", &shared_id]);
    assert_eq!(wait_pid(shared_pid).code(), Some(0));
    let out = std::fs::read_to_string(app.0.join("out")).unwrap();
    assert_eq!(out.trim(), "sleep 1000", "pid 1 is the sandbox's workload");
    ok(&["delete", &shared_id]);
    // Joining its mount namespace is refused, saying why.
    let mnt_id = id("pod-mnt");
    // (Not in the sandbox's pid namespace: the stand-in of a failed create
    // is a zombie of ours that the sandbox's stand-in, that namespace's
    // init, would wait for at its end; engines reap theirs, this test
    // does not.)
    let mut mnt_spec = Spec::new(&["true"]);
    mnt_spec.patch = shared_spec.patch.clone();
    mnt_spec.patch["linux"]["namespaces"] = json!([
        {"type": "mount", "path": path("mnt")},
        {"type": "ipc", "path": path("ipc")},
        {"type": "uts", "path": path("uts")},
        {"type": "network", "path": path("net")},
    ]);
    write_config(&app.0.join("b"), &mnt_spec);
    let out = run(&[
        "create",
        "--bundle",
        app.0.join("b").to_str().unwrap(),
        &mnt_id,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mount namespace"), "{err}");
    assert!(!state_root().join(&mnt_id).exists());
    assert_eq!(status_of(&sb_id), "running");
    ok(&["delete", &app_id]);
    assert!(!on_share.exists(), "the app's binds stayed on the share");
    assert!(Path::new(&format!("/proc/{vmm}")).exists());
    // Deleting the app left the sandbox's VM reachable.
    assert_eq!(ok(&["exec", &sb_id, "echo", "still"]).trim(), "still");

    // An app container naming a sandbox that does not exist: refused.
    let ghost = id("pod-ghost");
    let mut ghost_spec = Spec::new(&["true"]);
    ghost_spec.patch = json!({"annotations": {TYPE: "container", SANDBOX: "no-such-sandbox"}});
    write_config(&app.0.join("b"), &ghost_spec);
    let out = run(&[
        "create",
        "--bundle",
        app.0.join("b").to_str().unwrap(),
        &ghost,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-sandbox"), "{err}");
    assert!(!state_root().join(&ghost).exists());

    // A second app runs when the sandbox process is SIGKILLed: the VM goes
    // with it, both containers' pids exit with an error, and delete leaves
    // nothing of either.
    let app2_id = id("pod-app2");
    let mut app2_spec = Spec::new(&["sh", "-c", "echo up; exec sleep 1000"]);
    app2_spec.patch = app_spec.patch.clone();
    write_config(&app.0.join("b"), &app2_spec);
    let app2_pid = create(&app.0, &app.0.join("b"), &app2_id, &[]);
    ok(&["start", &app2_id]);
    wait_file(&app.0.join("out"), "up\n");
    let owner = state(&sb_id)["hull"]["sandboxPid"].as_i64().unwrap() as i32;
    // SAFETY: kill of the sandbox process this test started.
    unsafe { libc::kill(owner, libc::SIGKILL) };
    assert_eq!(wait_pid(app2_pid).code(), Some(255), "the app's pid");
    assert_eq!(wait_pid(sb_pid).code(), Some(255), "the sandbox's pid");
    assert_eq!(status_of(&app2_id), "stopped");
    // An app container naming the sandbox now stopped: refused, saying so.
    let late = id("pod-late");
    let mut late_spec = Spec::new(&["true"]);
    late_spec.patch = json!({"annotations": {TYPE: "container", SANDBOX: sb_id}});
    write_config(&app.0.join("b"), &late_spec);
    let out = run(&[
        "create",
        "--bundle",
        app.0.join("b").to_str().unwrap(),
        &late,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{sb_id} is stopped")), "{err}");
    assert!(!state_root().join(&late).exists());
    ok(&["delete", &app2_id]);
    ok(&["delete", &sb_id]);
    assert_cleaned_up(&sb_id);
    assert_cleaned_up(&app_id);
    assert_cleaned_up(&app2_id);
}
