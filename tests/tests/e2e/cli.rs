//! The runc-shaped lifecycle end to end, in real microVMs: `create` leaves a
//! sandbox process holding the caller's stdio, `start`/`exec`/`pause`/
//! `resume`/`events`/`ps`/`kill`/`delete` drive it, the sandbox process
//! exits like the workload, and a console socket gets a working pty.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use hull_e2e::bundle::{busybox_bundle, write_config, Spec};
use hull_e2e::run::{assert_cleaned_up, hull_bin, state_root};
use hull_e2e::Scratch;
use hull_e2e::{record_boot, Watchdog};
use serde_json::Value;

/// Longest any one step may take in the slow test host.
const STEP: Duration = Duration::from_secs(300);

pub(crate) fn id(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

pub(crate) fn subreaper() {
    // SAFETY: prctl with integer arguments.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }, 0);
}

pub(crate) fn hull(args: &[&str]) -> Command {
    let mut cmd = Command::new(hull_bin());
    cmd.arg("--root").arg(state_root()).args(args);
    cmd
}

/// `hull ARGS` to its end; a hull that hangs is killed at [`STEP`] and the
/// test fails.
pub(crate) fn run(args: &[&str]) -> Output {
    let child = hull(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("hull {args:?}: {e}"));
    let watchdog = Watchdog::arm(&child, STEP);
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("hull {args:?}: {e}"));
    assert!(!watchdog.disarm(), "hull {args:?} hung for {STEP:?}");
    out
}

pub(crate) fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "hull {args:?}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn status_of(id: &str) -> String {
    let v: Value = serde_json::from_str(&ok(&["state", id])).expect("state JSON");
    v["status"].as_str().unwrap_or_default().to_owned()
}

/// Waits for our adopted descendant `pid` (bounded).
pub(crate) fn wait_pid(pid: i32) -> ExitStatus {
    let deadline = Instant::now() + STEP;
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return ExitStatus::from_raw(status);
        }
        assert!(r == 0, "waitpid {pid}: {}", std::io::Error::last_os_error());
        assert!(Instant::now() < deadline, "process {pid} did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `path` contains `text` (bounded).
pub(crate) fn wait_file(path: &Path, text: &str) -> String {
    let deadline = Instant::now() + STEP;
    loop {
        let got = std::fs::read_to_string(path).unwrap_or_default();
        if got.contains(text) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{} never had {text:?}: {got:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `hull create` with stdout/stderr into files of `dir`; the sandbox pid.
pub(crate) fn create(dir: &Path, bundle: &Path, id: &str, extra: &[&str]) -> i32 {
    let pid_file = dir.join("pid");
    let out = std::fs::File::create(dir.join("out")).unwrap();
    let err = std::fs::File::create(dir.join("err")).unwrap();
    let status = hull(&["create", "--bundle", bundle.to_str().unwrap()])
        .args(["--pid-file", pid_file.to_str().unwrap()])
        .args(extra)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .unwrap();
    let err = std::fs::read_to_string(dir.join("err")).unwrap_or_default();
    assert!(status.success(), "create {id}: {status}: {err}");
    std::fs::read_to_string(pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// hull-vmm among the container's host processes (`ps`: its stand-in,
/// sandbox process and VMM).
pub(crate) fn vmm_of(pids: &[i32]) -> i32 {
    pids.iter()
        .find(|&&p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "hull-vmm")
        })
        .copied()
        .unwrap_or_else(|| panic!("no hull-vmm among {pids:?}"))
}

pub(crate) fn bundle(name: &str, spec: &Spec) -> Scratch {
    let scratch = Scratch::tmp(name);
    busybox_bundle(&scratch.0.join("b"), spec);
    scratch
}

#[test]
fn create_start_exec_pause_events_kill_delete() {
    subreaper();
    let spec = Spec::new(&[
        "sh",
        "-c",
        "trap 'echo bye; exit 7' TERM; echo ready; while :; do sleep 1; done",
    ]);
    let s = bundle("lifecycle", &spec);
    let id = id("lifecycle");
    let pid = create(&s.0, &s.0.join("b"), &id, &[]);
    assert_eq!(status_of(&id), "created");
    // An exec before start runs in the container (as with runc), while its
    // init still waits: nothing in its output file yet.
    assert_eq!(ok(&["exec", &id, "echo", "early"]), "early\n");
    assert_eq!(
        std::fs::read_to_string(s.0.join("out")).unwrap_or_default(),
        ""
    );
    assert_eq!(status_of(&id), "created");
    ok(&["start", &id]);
    wait_file(&s.0.join("out"), "ready\n");
    assert_eq!(status_of(&id), "running");
    // The VM is ours.
    let kernel = ok(&["exec", &id, "uname", "-r"]);
    assert!(kernel.starts_with("6.12"), "{kernel}");
    record_boot(&format!("hull create {id}: guest kernel {}", kernel.trim()));

    let out = run(&[
        "exec",
        "--env",
        "X=from-exec",
        "--cwd",
        "/tmp",
        &id,
        "sh",
        "-c",
        "echo $X $(pwd); exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-exec /tmp\n");
    let out = run(&["exec", "--user", "1000:1000", &id, "id", "-u"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1000\n");

    let stats: Value = serde_json::from_str(&ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(stats["type"], "stats");
    assert!(
        stats["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{stats}"
    );
    assert!(
        stats["data"]["pids"]["current"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    let pids: Vec<i32> = serde_json::from_str(&ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(pids.contains(&pid), "{pids:?}");

    let out = run(&["delete", &id]);
    assert!(!out.status.success(), "deleted a running container");

    ok(&["pause", &id]);
    assert_eq!(status_of(&id), "paused");
    let vmm = vmm_of(&pids);
    // The container's cgroup is frozen in the guest; the VM runs on.
    let stat = std::fs::read_to_string(format!("/proc/{vmm}/stat")).unwrap();
    let state = stat.rsplit(") ").next().unwrap().chars().next();
    assert_ne!(state, Some('T'), "the VMM was stopped: {stat}");
    // A signal to a paused container waits for resume, as with runc; stats
    // still come, and exec is refused, not hung.
    ok(&["kill", &id, "TERM"]);
    assert_eq!(status_of(&id), "paused");
    let stats: Value = serde_json::from_str(&ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(stats["type"], "stats");
    let out = run(&["exec", &id, "true"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("paused"),
        "{out:?}"
    );
    let out = run(&["delete", &id]);
    assert!(!out.status.success(), "deleted a paused container");
    assert_eq!(std::fs::read_to_string(s.0.join("out")).unwrap(), "ready\n");
    ok(&["resume", &id]);
    let status = wait_pid(pid);
    assert_eq!(status.code(), Some(7), "{status}");
    assert_eq!(
        std::fs::read_to_string(s.0.join("out")).unwrap(),
        "ready\nbye\n"
    );
    assert_eq!(status_of(&id), "stopped");
    let out = run(&["kill", &id, "KILL"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "hull: container not running\n"
    );
    let out = run(&["exec", &id, "true"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped"));
    ok(&["delete", &id]);
    assert_cleaned_up(&id);
}

#[test]
fn run_detached_exec_detached_and_a_signal_death() {
    subreaper();
    let spec = Spec::new(&["sh", "-c", "echo up; exec sleep 1000"]);
    let mut spec = spec;
    // Without a pid namespace, SIGKILL/TERM act as on any process.
    spec.namespaces = vec!["ipc", "uts", "mount", "network"];
    let s = bundle("detach", &spec);
    let id = id("detach");
    let pid_file = s.0.join("pid");
    let out = std::fs::File::create(s.0.join("out")).unwrap();
    let status = hull(&[
        "run",
        "--detach",
        "--bundle",
        s.0.join("b").to_str().unwrap(),
    ])
    .args(["--pid-file", pid_file.to_str().unwrap(), &id])
    .stdin(Stdio::null())
    .stdout(out)
    .status()
    .unwrap();
    assert!(status.success());
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    wait_file(&s.0.join("out"), "up\n");
    assert_eq!(status_of(&id), "running");
    record_boot(&format!("hull run --detach {id}"));

    let exec_pid_file = s.0.join("exec.pid");
    let exec_out = std::fs::File::create(s.0.join("exec.out")).unwrap();
    let status = hull(&[
        "exec",
        "--detach",
        "--pid-file",
        exec_pid_file.to_str().unwrap(),
    ])
    .args([id.as_str(), "sh", "-c", "echo exec-ran; exit 4"])
    .stdin(Stdio::null())
    .stdout(exec_out)
    .status()
    .unwrap();
    assert!(status.success());
    let exec_pid: i32 = std::fs::read_to_string(&exec_pid_file)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(wait_pid(exec_pid).code(), Some(4));
    assert_eq!(
        std::fs::read_to_string(s.0.join("exec.out")).unwrap(),
        "exec-ran\n"
    );

    ok(&["kill", &id, "9"]);
    assert_eq!(wait_pid(pid).signal(), Some(libc::SIGKILL));
    ok(&["delete", &id]);
    assert_cleaned_up(&id);
}

/// Receives the pty master `hull` sends to the console socket.
fn accept_master(listener: &UnixListener) -> std::fs::File {
    let (conn, _) = listener.accept().unwrap();
    let (name, fd) = runtime::process::console::recv_fd(&conn, 4096).unwrap();
    assert!(String::from_utf8_lossy(&name).starts_with("/dev/pts/"));
    std::fs::File::from(fd)
}

/// Reads from the pty master until everything read so far contains
/// `text` (bounded by [`STEP`]); returns it all.
fn read_until(master: &mut std::fs::File, text: &str) -> String {
    read_more(master, String::new(), text)
}

/// [`read_until`], appending to what was already read (`text` must show
/// up in the new part).
fn read_more(master: &mut std::fs::File, mut got: String, text: &str) -> String {
    use std::os::fd::AsRawFd;
    let deadline = Instant::now() + STEP;
    let mut buf = [0u8; 4096];
    let from = got.len();
    while !got[from..].contains(text) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the pty never showed {text:?}: {got:?}");
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(60_000) as i32) };
        if r <= 0 {
            continue;
        }
        let n = master.read(&mut buf).unwrap_or(0);
        assert!(n > 0, "the pty closed before {text:?}: {got:?}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    got
}

fn set_size(master: &std::fs::File, rows: u16, cols: u16) {
    use std::os::fd::AsRawFd;
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a valid winsize on an open pty master.
    let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    assert_eq!(r, 0);
}

#[test]
fn a_console_socket_gets_a_working_terminal() {
    subreaper();
    let mut spec = Spec::new(&["sh"]);
    spec.terminal = true;
    let s = bundle("console", &spec);
    let id = id("console");
    let socket: PathBuf = s.0.join("console.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let receiver = std::thread::spawn(move || accept_master(&listener));
    let pid = create(
        &s.0,
        &s.0.join("b"),
        &id,
        &["--console-socket", socket.to_str().unwrap()],
    );
    let mut master = receiver.join().unwrap();
    set_size(&master, 33, 101);
    ok(&["start", &id]);
    master
        .write_all(b"tty; stty size; [ /dev/console -ef \"$(tty)\" ] && echo console=tty; echo sum=$((40+2))\n")
        .unwrap();
    let seen = read_until(&mut master, "sum=42");
    // A pty of the container's own devpts, as with runc (which binds it
    // over /dev/console too).
    assert!(!seen.contains("not a tty"), "{seen}");
    assert!(seen.contains("\n/dev/pts/"), "{seen}");
    assert!(seen.contains("\nconsole=tty"), "{seen}");
    assert!(seen.contains("33 101"), "{seen}");
    record_boot(&format!("hull create --console-socket {id}"));
    // A resize on the caller's side reaches the guest's pty (SIGWINCH on
    // the sandbox process's terminal, relayed to the agent).
    set_size(&master, 20, 70);
    master.write_all(b"stty size\n").unwrap();
    let mut seen = String::new();
    let deadline = Instant::now() + STEP;
    while !seen.contains("\n20 70") {
        assert!(
            Instant::now() < deadline,
            "the resize never reached the guest: {seen}"
        );
        seen = read_more(&mut master, seen, "# ");
        if !seen.contains("\n20 70") {
            master.write_all(b"stty size\n").unwrap();
            seen.push('|');
        }
    }
    // exec --tty with its own console socket.
    let socket2 = s.0.join("exec.sock");
    let listener2 = UnixListener::bind(&socket2).unwrap();
    let receiver2 = std::thread::spawn(move || accept_master(&listener2));
    let exec_pid_file = s.0.join("exec.pid");
    let status = hull(&[
        "exec",
        "--tty",
        "--detach",
        "--console-socket",
        socket2.to_str().unwrap(),
    ])
    .args(["--pid-file", exec_pid_file.to_str().unwrap()])
    .args([id.as_str(), "sh", "-c", "tty; read x; exit $x"])
    .stdin(Stdio::null())
    .status()
    .unwrap();
    assert!(status.success());
    let mut exec_master = receiver2.join().unwrap();
    read_until(&mut exec_master, "/dev/pts/");
    exec_master.write_all(b"6\n").unwrap();
    let exec_pid: i32 = std::fs::read_to_string(&exec_pid_file)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(wait_pid(exec_pid).code(), Some(6));

    master.write_all(b"exit 3\n").unwrap();
    assert_eq!(wait_pid(pid).code(), Some(3));
    ok(&["delete", &id]);
    assert_cleaned_up(&id);
}

#[test]
fn cgroups_path_network_namespace_and_resources_reach_the_sandbox() {
    subreaper();
    let s = bundle("hostint", &Spec::new(&["sleep", "1000"]));
    let id = id("hostint");
    // A network namespace held by a process of ours.
    let mut holder = Command::new("unshare")
        .args(["--net", "sleep", "1000"])
        .spawn()
        .expect("unshare");
    let netns = format!("/proc/{}/ns/net", holder.id());
    let deadline = Instant::now() + STEP;
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    while std::fs::read_link(&netns).ok().as_ref() == Some(&host_ns) {
        assert!(Instant::now() < deadline, "unshare never made a namespace");
        std::thread::sleep(Duration::from_millis(20));
    }
    let config_path = s.0.join("b/config.json");
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    let cgroup = format!("/hull-e2e/{id}");
    config["linux"]["cgroupsPath"] = Value::from(cgroup.clone());
    config["linux"]["resources"] = serde_json::json!({
        "memory": {"limit": 200 << 20},
        "cpu": {"quota": 200000, "period": 100000},
        "pids": {"limit": 100}
    });
    for ns in config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = Value::from(netns.clone());
        }
    }
    std::fs::write(&config_path, config.to_string()).unwrap();

    let pid = create(&s.0, &s.0.join("b"), &id, &[]);
    ok(&["start", &id]);
    record_boot(&format!("hull create {id} (cgroup, netns, resources)"));
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(own.contains(&cgroup), "{own}");
    let pids: Vec<i32> = serde_json::from_str(&ok(&["ps", "--format", "json", &id])).unwrap();
    let vmm = vmm_of(&pids);
    assert_eq!(
        std::fs::read_link(format!("/proc/{vmm}/ns/net")).unwrap(),
        std::fs::read_link(&netns).unwrap(),
        "the VMM is not in the container's network namespace"
    );
    assert_eq!(ok(&["exec", &id, "nproc"]).trim(), "2");
    let meminfo = ok(&["exec", &id, "grep", "MemTotal", "/proc/meminfo"]);
    let kib: u64 = meminfo.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!((200 * 1024..300 * 1024).contains(&kib), "{meminfo}");
    // In the guest, the container's cgroup has the spec's limits; update
    // changes them, and refuses what the VM cannot do.
    let limit = |id: &str| -> u64 {
        let v: Value = serde_json::from_str(&ok(&["events", "--stats", id])).unwrap();
        v["data"]["memory"]["usage"]["limit"].as_u64().unwrap()
    };
    assert_eq!(limit(&id), 200 << 20);
    ok(&["update", "--memory", "100m", "--pids-limit", "50", &id]);
    assert_eq!(limit(&id), 100 << 20);
    let out = run(&["update", "--memory", "4g", &id]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot resize a running VM"));
    let out = run(&["update", "--cpuset-cpus", "0", &id]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not supported"));

    ok(&["delete", "--force", &id]);
    assert_eq!(wait_pid(pid).signal(), Some(libc::SIGKILL));
    assert!(!Path::new("/sys/fs/cgroup")
        .join(cgroup.trim_start_matches('/'))
        .exists());
    assert_cleaned_up(&id);
    let _ = holder.kill();
    let _ = holder.wait();
}

/// What `start`, `exec` and the hooks use is the spec `create` was given:
/// changing the bundle's config.json afterwards changes nothing. The
/// poststart hook runs after the workload's first step.
#[test]
fn config_changes_after_create_do_not_reach_the_container() {
    subreaper();
    let s = bundle(
        "after-create",
        &Spec::new(&["sh", "-c", "echo from-create; echo $MARK"]),
    );
    let marker = s.0.join("poststart-ran");
    // The poststart hook appends to the file the workload appends to
    // first, as runtime-tools' poststart test checks.
    let order = s.0.join("b/rootfs/tmp/order");
    let mut first = Spec::new(&[
        "sh",
        "-c",
        "echo from-create $MARK; echo process >> /tmp/order",
    ]);
    first.env.push("MARK=one".into());
    first.patch = serde_json::json!({"hooks": {"poststart": [
        {"path": "/bin/sh", "args": ["sh", "-c",
            format!("echo ran > {}; echo hook >> {}", marker.display(), order.display())]}
    ]}});
    write_config(&s.0.join("b"), &first);
    let id = id("after-create");
    let pid = create(&s.0, &s.0.join("b"), &id, &[]);
    // The bundle changes: other args, env and no hooks.
    let mut second = Spec::new(&["sh", "-c", "echo from-edit"]);
    second.env.push("MARK=two".into());
    write_config(&s.0.join("b"), &second);
    ok(&["start", &id]);
    let status = wait_pid(pid);
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(s.0.join("out")).unwrap_or_default(),
        "from-create one\n"
    );
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap_or_default(),
        "ran\n"
    );
    assert_eq!(
        std::fs::read_to_string(&order).unwrap_or_default(),
        "process\nhook\n",
        "poststart ran before the workload's first step"
    );
    ok(&["delete", &id]);
}

/// An agent that stops answering (its VM stopped under it) fails the
/// request within `timeouts.agent_request_secs`, naming it; the engine is
/// not hung.
#[test]
fn an_agent_that_stops_answering_hits_the_deadline() {
    subreaper();
    let s = bundle(
        "deadline",
        &Spec::new(&["sh", "-c", "echo ready; exec sleep 1000"]),
    );
    let conf = s.file("config.toml", b"[timeouts]\nagent_request_secs = 3\n");
    let conf = conf.to_str().expect("utf-8 path").to_owned();
    let id = id("deadline");
    let pid = create(&s.0, &s.0.join("b"), &id, &[]);
    ok(&["start", &id]);
    wait_file(&s.0.join("out"), "ready\n");
    let pids: Vec<i32> = serde_json::from_str(&ok(&["ps", "--format", "json", &id])).unwrap();
    let vmm = vmm_of(&pids);
    // SAFETY: plain kill of the container's VMM, which this test owns.
    unsafe { libc::kill(vmm, libc::SIGSTOP) };
    let started = Instant::now();
    let out = run(&["--config", &conf, "events", "--stats", &id]);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    // The VM's vsock does not even take the connection: the first step
    // (`connect`) is the one named.
    assert!(err.contains("did not answer connect within 3 s"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    // SAFETY: as above.
    unsafe { libc::kill(vmm, libc::SIGCONT) };
    let stats: Value = serde_json::from_str(&ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(stats["type"], "stats");
    ok(&["kill", &id, "KILL"]);
    wait_pid(pid);
    ok(&["delete", &id]);
    assert_cleaned_up(&id);
}

/// `ip`/`nsenter` as the CNI plugins would act, for the test's own setup.
fn sh(script: &str) {
    let out = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(out.status.success(), "{script}: {out:?}");
}

#[test]
fn an_interface_added_between_create_and_start_is_the_guests_eth0() {
    subreaper();
    let s = bundle(
        "latenet",
        &Spec::new(&[
            "sh",
            "-c",
            "ls /sys/class/net; cat /sys/class/net/eth0/address; ip -4 -o addr show eth0; \
             wget -q -O - http://10.77.63.1:8064/",
        ]),
    );
    let id = id("latenet");
    let pid = create(&s.0, &s.0.join("b"), &id, &[]);
    record_boot(&format!("hull create {id} (a reserved NIC)"));
    // `ctr run --cni`'s order: CNI wires /proc/<pid>/ns/net after create.
    let host_end = format!("hl-{pid}");
    sh(&format!(
        "ip link add {host_end} type veth peer name eth0 netns {pid} && \
         ip addr add 10.77.63.1/24 dev {host_end} && ip link set {host_end} up && \
         nsenter -t {pid} -n ip link set eth0 address 02:00:0a:4d:3f:02 && \
         nsenter -t {pid} -n ip addr add 10.77.63.2/24 dev eth0 && \
         nsenter -t {pid} -n ip link set eth0 up"
    ));
    let listener = std::net::TcpListener::bind("0.0.0.0:8064").unwrap();
    // Left to itself: the container's output tells whether it was reached.
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let mut request = [0u8; 512];
            let _ = conn.read(&mut request);
            let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\nlate-net");
        }
    });
    ok(&["start", &id]);
    let code = wait_pid(pid).code();
    let _ = Command::new("ip").args(["link", "del", &host_end]).status();
    let out = std::fs::read_to_string(s.0.join("out")).unwrap_or_default();
    let err = std::fs::read_to_string(s.0.join("err")).unwrap_or_default();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with("eth0\nlo\n02:00:0a:4d:3f:02\n"),
        "the reserved NIC became eth0 with the veth's MAC: {out}"
    );
    assert!(out.contains("inet 10.77.63.2/24"), "{out}");
    assert!(out.ends_with("late-net"), "{out}");
    ok(&["delete", &id]);
    assert_cleaned_up(&id);
}
