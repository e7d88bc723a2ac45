//! config.json fields applied in a real guest: seccomp, devices and the
//! device cgroup, user namespaces, propagation, a read-only rootfs with a
//! bind mount onto a path the image lacks, and hull's configuration file
//! and `io.hull.*` annotations. Each runs `hull run` on a busybox bundle.

use serde_json::{json, Value};

use hull_e2e::bundle::{busybox_bundle, Spec};
use hull_e2e::run::{assert_cleaned_up, HullRun, RunOutput};
use hull_e2e::Scratch;

fn id(name: &str) -> String {
    format!("spec-{name}-{}", std::process::id())
}

fn run(name: &str, spec: &Spec) -> RunOutput {
    run_with(name, spec, &[])
}

fn run_with(name: &str, spec: &Spec, global: &[&str]) -> RunOutput {
    let scratch = Scratch::tmp(name);
    busybox_bundle(&scratch.0, spec);
    let id = id(name);
    let out = HullRun::start_with(&scratch.0, &id, None, global).finish();
    assert_cleaned_up(&id);
    out
}

fn sh(script: &str) -> Spec {
    Spec::new(&["sh", "-c", script])
}

#[test]
fn a_seccomp_profile_denies_mkdir_with_eperm() {
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    // Installed last with no_new_privs, before the capabilities drop without.
    for nnp in [true, false] {
        let mut spec = sh("mkdir /denied; echo rc=$?; touch /allowed && echo touched");
        spec.patch = json!({"process": {"noNewPrivileges": nnp}, "linux": {"seccomp": profile}});
        let out = run(&format!("seccomp-{nnp}"), &spec);
        assert_eq!(out.code(), Some(0), "{out:?}");
        assert_eq!(out.stdout_str(), "rc=1\ntouched\n", "{out:?}");
        assert!(out.stderr.contains("Operation not permitted"), "{out:?}");
    }
}

#[test]
fn device_nodes_are_made_and_the_device_cgroup_denies_the_rest() {
    let mut spec = sh("ls -ln /dev/hull-null /dev/hull-kmsg | cut -c1-10,30-36; \
         echo x > /dev/hull-null && echo null-ok; \
         head -c1 /dev/hull-kmsg >/dev/null; echo kmsg=$?");
    spec.patch = json!({"linux": {
        "devices": [
            {"path": "/dev/hull-null", "type": "c", "major": 1, "minor": 3, "fileMode": 400},
            {"path": "/dev/hull-kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 438}
        ],
        "resources": {"devices": [{"allow": false, "access": "rwm"}]}
    }});
    let out = run("devices", &spec);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let stdout = out.stdout_str();
    // c 1:3 with mode 0620 (400), c 1:11 with 0666.
    assert!(stdout.contains("crw--w----"), "{stdout}");
    assert!(stdout.contains("crw-rw-rw-"), "{stdout}");
    assert!(stdout.contains("null-ok"), "{stdout}");
    // /dev/null's numbers are in runc's default allow list; 1:11 is not.
    assert!(stdout.contains("kmsg=1"), "{stdout}");
    assert!(out.stderr.contains("Operation not permitted"), "{out:?}");
}

#[test]
fn a_user_namespace_gets_the_specs_maps() {
    let mut spec = sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g");
    spec.namespaces = vec!["pid", "ipc", "uts", "mount", "network", "user"];
    spec.patch = json!({"linux": {
        "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}]
    }});
    let out = run("userns", &spec);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let words: Vec<String> = out
        .stdout_str()
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(
        words,
        ["0", "100000", "65536", "0", "200000", "65536", "0", "0"],
        "{out:?}"
    );
}

#[test]
fn root_and_mount_propagation_are_applied() {
    let script =
        "awk '$5 == \"/\" {print $7} $5 == \"/shared\" {print \"m:\" $7}' /proc/self/mountinfo";
    for (mode, expect) in [
        ("shared", "shared:"),
        ("private", ""),
        ("unbindable", "unbindable"),
    ] {
        let mut spec = sh(script);
        let mut mounts = spec.config()["mounts"].clone();
        if let Value::Array(list) = &mut mounts {
            list.push(
                json!({"destination": "/shared", "type": "tmpfs", "source": "tmpfs",
                             "options": ["rshared"]}),
            );
        }
        spec.patch = json!({"mounts": mounts, "linux": {"rootfsPropagation": mode}});
        let out = run(&format!("prop-{mode}"), &spec);
        assert_eq!(out.code(), Some(0), "{out:?}");
        let stdout = out.stdout_str();
        let root = stdout.lines().find(|l| !l.starts_with("m:")).unwrap_or("");
        if expect.is_empty() {
            assert!(
                !root.contains("shared:") && !root.contains("master:"),
                "{mode}: {stdout}"
            );
        } else {
            assert!(root.starts_with(expect), "{mode}: {stdout}");
        }
        let sub = stdout.lines().find(|l| l.starts_with("m:")).unwrap_or("");
        assert!(sub.starts_with("m:shared:"), "{mode}: {stdout}");
    }
}

#[test]
fn a_read_only_root_gets_a_bind_mount_onto_a_path_it_lacks() {
    let host = Scratch::tmp("ro-bind-src");
    let file = host.file("resolv.conf", b"nameserver 192.0.2.53\n");
    let mut spec = sh("cat /etc/hull-resolv.conf; touch /x 2>&1 | grep -c Read-only");
    spec.readonly = true;
    let mut mounts = spec.config()["mounts"].clone();
    if let Value::Array(list) = &mut mounts {
        list.push(
            json!({"destination": "/etc/hull-resolv.conf", "type": "bind",
                         "source": file, "options": ["rbind", "ro"]}),
        );
    }
    spec.patch = json!({"mounts": mounts});
    let out = run("ro-bind", &spec);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout_str(), "nameserver 192.0.2.53\n1\n", "{out:?}");
}

#[test]
fn the_configuration_file_and_annotations_size_the_vm() {
    let conf = Scratch::tmp("config-file");
    let path = conf.file("config.toml", b"[vm]\nvcpus = 2\nmemory_mib = 320\n");
    let global = ["--config", path.to_str().expect("utf-8 path")];
    let spec = sh("nproc; grep MemTotal /proc/meminfo");
    let out = run_with("conf", &spec, &global);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let stdout = out.stdout_str();
    assert!(stdout.starts_with("2\n"), "{stdout}");
    let kib = |s: &str| -> u64 {
        s.split_whitespace()
            .nth(2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let total = kib(&stdout);
    assert!((250_000..330_000).contains(&total), "{stdout}");
    // An annotation overrides the file for one container.
    let mut spec = sh("nproc");
    spec.patch = json!({"annotations": {"io.hull.vm.vcpus": "1"}});
    let out = run_with("conf-annot", &spec, &global);
    assert_eq!(out.stdout_str(), "1\n", "{out:?}");
    // A bad value is refused before any VM boots, naming the annotation.
    let mut spec = sh("true");
    spec.patch = json!({"annotations": {"io.hull.vm.vcpus": "lots"}});
    let out = run_with("conf-bad", &spec, &global);
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert!(out.stderr.contains("io.hull.vm.vcpus"), "{out:?}");
}

#[test]
fn a_tmpfs_with_tmpcopyup_starts_with_what_it_covers() {
    let scratch = Scratch::tmp("tmpcopyup");
    let mut spec = sh(
        "cat /data/hello; touch /data/new && echo writable; mount | grep -c ' /data type tmpfs'",
    );
    let mut mounts = spec.config()["mounts"].clone();
    if let Value::Array(list) = &mut mounts {
        list.push(
            json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                         "options": ["tmpcopyup", "mode=755"]}),
        );
    }
    spec.patch = json!({"mounts": mounts});
    busybox_bundle(&scratch.0, &spec);
    std::fs::create_dir_all(scratch.0.join("rootfs/data")).expect("mkdir data");
    std::fs::write(scratch.0.join("rootfs/data/hello"), "from the image\n").expect("write");
    let id = id("tmpcopyup");
    let out = HullRun::start(&scratch.0, &id, None).finish();
    assert_cleaned_up(&id);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout_str(), "from the image\nwritable\n1\n", "{out:?}");
    // The image itself is untouched by the container's write.
    assert!(!scratch.0.join("rootfs/data/new").exists());
}
