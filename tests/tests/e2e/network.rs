//! The container's network in its VM: a veth in a CNI-style namespace
//! given by path, Docker's way (hull makes the namespace, a `prestart` hook
//! adds the veth), `--network none` (loopback only), and bad input. Each
//! namespace is made here with `ip` (the test's own tooling; hull uses
//! netlink), its host end addressed so that both directions are tested.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hull_e2e::bundle::{busybox_bundle, Spec};
use hull_e2e::run::{assert_cleaned_up, hull_run, HullRun};
use hull_e2e::Scratch;

fn id(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

fn bundle(name: &str, spec: &Spec) -> Scratch {
    let scratch = Scratch::tmp(name);
    busybox_bundle(&scratch.0, spec);
    scratch
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace with `eth0` (a veth) at `guest/24`, MTU
/// `mtu`, a default route via `host`, whose peer is up in the test host's
/// namespace at `host/24`. Deleted (with the veth) on drop.
struct Netns {
    name: String,
    host_end: String,
}

impl Netns {
    fn new(tag: &str, subnet: u8, mtu: u32) -> Self {
        let name = format!("hull-{tag}-{}", std::process::id());
        let host_end = format!("hv{subnet}-{}", std::process::id() % 100_000);
        ip(&["netns", "add", &name]);
        let ns = Self {
            name: name.clone(),
            host_end: host_end.clone(),
        };
        ip(&[
            "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", &name,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("10.77.{subnet}.1/24"),
            "dev",
            &host_end,
        ]);
        ip(&["link", "set", &host_end, "up"]);
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("10.77.{subnet}.2/24"),
            "dev",
            "eth0",
        ]);
        ip(&[
            "-n",
            &name,
            "link",
            "set",
            "eth0",
            "mtu",
            &mtu.to_string(),
            "up",
        ]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &name,
            "route",
            "add",
            "default",
            "via",
            &format!("10.77.{subnet}.1"),
        ]);
        ns
    }

    fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }

    fn mac(&self) -> String {
        let out = ip(&["-n", &self.name, "-o", "link", "show", "eth0"]);
        let after = out.split("link/ether ").nth(1).expect("eth0 has a MAC");
        after
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// Links and qdiscs in the namespace (for the leftovers check).
    fn leftovers(&self) -> (String, String) {
        let links = ip(&["-n", &self.name, "-o", "link"]);
        let out = Command::new("tc")
            .args(["-n", &self.name, "qdisc", "show", "dev", "eth0"])
            .output()
            .expect("run tc");
        (links, String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_end])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// The spec's network namespace entry, with `path` when given.
fn with_netns(spec: &mut Spec, path: Option<&str>) {
    with_netns_in(spec, path, &["pid", "ipc", "uts", "mount", "network"]);
}

fn with_netns_in(spec: &mut Spec, path: Option<&str>, list: &[&str]) {
    let namespaces: Vec<serde_json::Value> = list
        .iter()
        .map(|t| match (*t, path) {
            ("network", Some(p)) => serde_json::json!({"type": "network", "path": p}),
            (t, _) => serde_json::json!({"type": t}),
        })
        .collect();
    hull_e2e::bundle::merge(
        &mut spec.patch,
        &serde_json::json!({"linux": {"namespaces": namespaces}}),
    );
}

/// Serves one HTTP response with `body` to the first connection, on a
/// thread left to itself (the container's output tells whether it was
/// reached); returns once listening.
fn serve_once(addr: &str, body: &'static str) {
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let mut request = [0u8; 1024];
            let _ = conn.read(&mut request);
            let _ = write!(
                conn,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
}

/// GET / from `addr`, the whole response.
fn http_get(addr: &str) -> String {
    let mut conn =
        TcpStream::connect_timeout(&addr.parse().expect("addr"), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    conn.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut response = String::new();
    let _ = conn.read_to_string(&mut response);
    response
}

#[test]
fn a_namespace_given_by_path_is_the_guests_network_both_ways() {
    let ns = Netns::new("path", 61, 1400);
    serve_once("10.77.61.1:8061", "hello-from-host");
    let mut spec = Spec::new(&[
        "sh",
        "-c",
        "cat /sys/class/net/eth0/address /sys/class/net/eth0/mtu; \
         ip -4 -o addr show eth0; ip route; \
         wget -q -O - http://10.77.61.1:8061/; echo; \
         mkdir -p /tmp/www && echo hello-from-guest > /tmp/www/index.html && \
         httpd -p 8062 -h /tmp/www && echo serving; exec sleep 1000",
    ]);
    // Without a pid namespace the SIGTERM below ends `sleep` (an init
    // would ignore it).
    with_netns_in(
        &mut spec,
        Some(&ns.path()),
        &["ipc", "uts", "mount", "network"],
    );
    let b = bundle("netpath", &spec);
    let id = id("netpath");
    let run = HullRun::start(&b.0, &id, None);
    run.wait_for_stdout("serving\n");
    let got = http_get("10.77.61.2:8062");
    let mac = ns.mac();
    // The engine's veth goes away under the running VM: traffic stops (the
    // host has no route left), the VM and its sandbox carry on.
    ip(&["link", "del", &ns.host_end]);
    assert!(
        TcpStream::connect_timeout(&"10.77.61.2:8062".parse().unwrap(), Duration::from_secs(5))
            .is_err(),
        "the container is reachable without its veth"
    );
    let mut run = run;
    assert!(
        run.child.try_wait().unwrap().is_none(),
        "hull run ended with the veth"
    );
    // SAFETY: plain kill of our own child.
    unsafe { libc::kill(run.child.id() as i32, libc::SIGTERM) };
    let out = run.finish();
    let stdout = out.stdout_str();
    assert!(stdout.starts_with(&format!("{mac}\n1400\n")), "{out:?}");
    assert!(stdout.contains("inet 10.77.61.2/24"), "{out:?}");
    assert!(
        stdout.contains("default via 10.77.61.1 dev eth0"),
        "{out:?}"
    );
    assert!(stdout.contains("hello-from-host"), "{out:?}");
    assert!(got.contains("hello-from-guest"), "host → guest: {got:?}");
    assert_cleaned_up(&id);
    let (links, qdiscs) = ns.leftovers();
    assert!(!links.contains("hulltap"), "a tap left behind: {links}");
    assert!(
        !qdiscs.contains("ingress"),
        "the veth's qdisc left behind: {qdiscs}"
    );
}

#[test]
fn docker_style_the_prestart_hook_adds_the_veth_and_it_is_wired() {
    let scratch = Scratch::tmp("nethook-hook");
    let host_end = format!("hd-{}", std::process::id() % 100_000);
    // Docker's libnetwork-setkey moves a veth into /proc/<state.pid>/ns/net
    // from a prestart hook; this hook does the same with ip.
    let hook = scratch.file(
        "hook.sh",
        format!(
            "#!/bin/sh\nset -e\npid=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p')\n\
             ip link add {host_end} type veth peer name eth0 netns \"$pid\"\n\
             ip addr add 10.77.62.1/24 dev {host_end}; ip link set {host_end} up\n\
             nsenter -t \"$pid\" -n ip addr add 10.77.62.2/24 dev eth0\n\
             nsenter -t \"$pid\" -n ip link set eth0 up\n\
             nsenter -t \"$pid\" -n ip route add default via 10.77.62.1\n"
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // The hook makes the address: listen on every address before it runs.
    serve_once("0.0.0.0:8063", "hello-docker-way");
    let mut spec = Spec::new(&[
        "sh",
        "-c",
        "ls /sys/class/net; wget -q -O - http://10.77.62.1:8063/",
    ]);
    with_netns(&mut spec, None);
    hull_e2e::bundle::merge(
        &mut spec.patch,
        &serde_json::json!({"hooks": {"prestart": [{"path": hook}]}}),
    );
    let b = bundle("nethook", &spec);
    let id = id("nethook");
    let out = hull_run(&b.0, &id, None);
    let _ = Command::new("ip").args(["link", "del", &host_end]).status();
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout_str(), "eth0\nlo\nhello-docker-way", "{out:?}");
    assert_cleaned_up(&id);
}

#[test]
fn a_new_namespace_without_hooks_has_loopback_only_and_it_is_up() {
    let mut spec = Spec::new(&["sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/flags"]);
    with_netns(&mut spec, None);
    let b = bundle("netnone", &spec);
    let id = id("netnone");
    let out = hull_run(&b.0, &id, None);
    assert_eq!(out.code(), Some(0), "{out:?}");
    // IFF_UP | IFF_LOOPBACK | IFF_RUNNING (0x49) at least.
    let stdout = out.stdout_str();
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("lo"), "{out:?}");
    let flags = lines
        .next()
        .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok());
    assert!(flags.is_some_and(|f| f & 1 == 1), "lo is not up: {out:?}");
    assert_cleaned_up(&id);
}

#[test]
fn a_missing_namespace_path_is_a_clear_error_and_leaves_nothing() {
    let mut spec = Spec::new(&["true"]);
    with_netns(&mut spec, Some("/var/run/netns/hull-no-such-ns"));
    let b = bundle("netmissing", &spec);
    let id = id("netmissing");
    let out = hull_run(&b.0, &id, None);
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert!(
        out.stderr.contains("/var/run/netns/hull-no-such-ns"),
        "the error names the path: {out:?}"
    );
    assert_cleaned_up(&id);
}

#[test]
fn a_host_network_spec_is_refused_with_why() {
    let mut spec = Spec::new(&["true"]);
    spec.namespaces = vec!["pid", "ipc", "uts", "mount"];
    let b = bundle("nethost", &spec);
    let id = id("nethost");
    let out = hull_run(&b.0, &id, None);
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert!(out.stderr.contains("cannot share"), "{out:?}");
    assert!(!Path::new(&hull_e2e::run::state_root().join(&id)).exists());
}

/// `RssAnon` of `pid` in KiB: the VMM's own heap, not the guest's RAM
/// (a shared memfd, counted as `RssShmem`).
fn rss_anon_kib(pid: i64) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no RssAnon for {pid}: {status}"))
}

#[test]
fn a_guest_flooding_its_nic_leaves_the_vmms_memory_bounded() {
    let ns = Netns::new("flood", 66, 1500);
    // Four pingers of large frames every millisecond each (busybox's
    // `-i 0` sends one and waits), for 20 s of the workload's own time;
    // CAP_NET_RAW for ping's raw socket.
    let mut spec = Spec::new(&[
        "sh",
        "-c",
        "echo up; for n in 1 2 3 4; do ping -q -i 0.001 -s 1400 -w 20 10.77.66.1 & done; wait; \
         echo flood-done; exec sleep 1000",
    ]);
    with_netns_in(
        &mut spec,
        Some(&ns.path()),
        &["ipc", "uts", "mount", "network"],
    );
    let caps = serde_json::json!(["CAP_NET_RAW", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"]);
    hull_e2e::bundle::merge(
        &mut spec.patch,
        &serde_json::json!({"process": {"capabilities": {
            "bounding": caps, "effective": caps, "permitted": caps}}}),
    );
    let b = bundle("netflood", &spec);
    let id = id("netflood");
    let run = HullRun::start(&b.0, &id, None);
    run.wait_for_stdout("up\n");
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(hull_e2e::run::state_root().join(&id).join("state.json"))
            .expect("state.json"),
    )
    .expect("state.json is JSON");
    let vmm = state["hull"]["vmmPid"].as_i64().expect("a VMM pid");
    let before = rss_anon_kib(vmm);
    if !run.stdout_shows("flood-done\n") {
        panic!("the run ended during the flood: {:?}", run.finish());
    }
    let after = rss_anon_kib(vmm);
    // SAFETY: plain kill of our own child.
    unsafe { libc::kill(run.child.id() as i32, libc::SIGTERM) };
    let out = run.finish();
    let stdout = out.stdout_str();
    let sent: u64 = stdout
        .split(" packets transmitted")
        .next()
        .and_then(|s| s.rsplit(['\n', ' ']).next()?.parse().ok())
        .unwrap_or(0);
    assert!(sent >= 1000, "the guest did not flood: {out:?}");
    assert!(
        after < before + 32 * 1024,
        "hull-vmm's own memory grew from {before} to {after} KiB under a flood of {sent} frames"
    );
    assert_cleaned_up(&id);
}
