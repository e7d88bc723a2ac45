//! The container's pid is its stand-in: in a new namespace of each type the
//! spec lists (its user namespace with the spec's id maps), in the
//! runtime's for each it does not; a signal sent to it reaches the
//! workload; killing it ends the container and leaves nothing behind.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{json, Value};

use super::lifecycle::wait_pid;
use super::Case;

const TYPES: [&str; 7] = ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"];

fn signal(pid: i32, signal: Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).unwrap();
}

fn ns(pid: &str, name: &str) -> String {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{name}: {e}"));
    link.display().to_string()
}

/// A case whose workload traps SIGTERM (exit 7), says `started`, and waits.
fn trapping(name: &str, linux: Option<Value>) -> Case {
    let case = Case::sh(
        name,
        "trap 'echo got TERM; exit 7' TERM; echo started; while :; do sleep 0.05; done",
    );
    if let Some(linux) = linux {
        let path = case.tmp.join("bundle/config.json");
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        config["linux"] = linux;
        std::fs::write(&path, config.to_string()).unwrap();
    }
    case
}

impl Case {
    /// Waits until the workload wrote `line` to its stdout file.
    fn wait_output(&self, line: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.file("out").lines().any(|l| l == line) {
            assert!(
                Instant::now() < deadline,
                "no {line:?} in {:?}",
                self.file("out")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn sandbox_pid(&self) -> i32 {
        let state: Value = serde_json::from_str(
            &std::fs::read_to_string(self.root().join(&self.id).join("state.json")).unwrap(),
        )
        .unwrap();
        state["hull"]["sandboxPid"].as_i64().unwrap() as i32
    }
}

pub fn the_pid_has_the_namespaces_the_spec_lists() {
    let all: Vec<Value> = ["pid", "ipc", "uts", "mount", "cgroup", "user", "network"]
        .iter()
        .map(|t| json!({ "type": t }))
        .collect();
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let case = trapping(
        "standin-ns",
        Some(json!({"namespaces": all, "uidMappings": map, "gidMappings": map})),
    );
    let (pid, _stdin) = case.create();
    let text = pid.to_string();
    for t in TYPES {
        assert_ne!(ns(&text, t), ns("self", t), "{t}");
    }
    let uid_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let words: Vec<&str> = uid_map.split_whitespace().collect();
    assert_eq!(words, ["0", "100000", "65536"]);
    assert_ne!(case.sandbox_pid(), pid);
    // SIGTERM to the pid (init of its own pid namespace) reaches the
    // workload, whose status the pid then exits with.
    let (code, _, err) = case.run_cli(&["start", &case.id]);
    assert_eq!(code, Some(0), "{err}");
    case.wait_output("started");
    signal(pid, Signal::SIGTERM);
    let status = wait_pid(pid);
    assert_eq!(status.code(), Some(7), "{status}");
    case.wait_output("got TERM");
    let (code, _, err) = case.run_cli(&["delete", &case.id]);
    assert_eq!(code, Some(0), "{err}");
    case.assert_clean();
}

pub fn unlisted_namespaces_are_the_runtimes() {
    let case = trapping("standin-inherit", None);
    let (pid, _stdin) = case.create();
    let text = pid.to_string();
    for t in TYPES {
        assert_eq!(ns(&text, t), ns("self", t), "{t}");
    }
    let (code, _, err) = case.run_cli(&["start", &case.id]);
    assert_eq!(code, Some(0), "{err}");
    case.wait_output("started");
    signal(pid, Signal::SIGTERM);
    assert_eq!(wait_pid(pid).code(), Some(7));
    let (code, _, err) = case.run_cli(&["delete", &case.id]);
    assert_eq!(code, Some(0), "{err}");
    case.assert_clean();
}

pub fn killing_the_pid_ends_the_container() {
    let case = trapping(
        "standin-kill",
        Some(json!({"namespaces": [{"type": "pid"}, {"type": "network"}]})),
    );
    let (pid, _stdin) = case.create();
    let sandbox = case.sandbox_pid();
    let (code, _, err) = case.run_cli(&["start", &case.id]);
    assert_eq!(code, Some(0), "{err}");
    case.wait_output("started");
    signal(pid, Signal::SIGKILL);
    assert_eq!(wait_pid(pid).signal(), Some(libc::SIGKILL));
    // The sandbox process ends the workload and its VM, and exits.
    assert!(wait_pid(sandbox).success());
    assert_eq!(case.status(), "stopped");
    assert_eq!(case.file("out"), "started\n", "the workload was killed");
    let (code, _, err) = case.run_cli(&["delete", &case.id]);
    assert_eq!(code, Some(0), "{err}");
    case.assert_clean();
}
