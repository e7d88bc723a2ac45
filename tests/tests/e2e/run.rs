//! `hull run` end to end: an OCI bundle (busybox rootfs) run in a microVM,
//! its stdio, exit status, identity, file sharing, and failures.

use std::path::Path;

use hull_e2e::bundle::{busybox_bundle, write_config, Spec};
use hull_e2e::run::{assert_cleaned_up, hull_run, HullRun};
use hull_e2e::Scratch;

fn id(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

/// A bundle in tmpfs (the test host's 9p cannot be shared again cleanly).
fn bundle(name: &str, spec: &Spec) -> Scratch {
    let scratch = Scratch::tmp(name);
    busybox_bundle(&scratch.0, spec);
    scratch
}

#[test]
fn stdout_and_stderr_stay_apart_and_complete() {
    let spec = Spec::new(&[
        "sh",
        "-c",
        "echo out1; echo err1 >&2; echo out2; echo err2 >&2",
    ]);
    let b = bundle("stdio", &spec);
    let id = id("stdio");
    let out = hull_run(&b.0, &id, None);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout_str(), "out1\nout2\n");
    assert_eq!(out.stderr, "err1\nerr2\n");
    assert!(out.timings.is_some(), "no timings: {out:?}");
    assert_cleaned_up(&id);
}

#[test]
fn exit_codes_come_back_exactly() {
    let b = bundle("codes", &Spec::new(&["true"]));
    for code in [0, 1, 42] {
        write_config(&b.0, &Spec::new(&["sh", "-c", &format!("exit {code}")]));
        let id = id(&format!("code{code}"));
        let out = hull_run(&b.0, &id, None);
        assert_eq!(out.code(), Some(code), "{out:?}");
        assert_cleaned_up(&id);
    }
}

#[test]
fn death_by_signal_is_128_plus_the_signal() {
    let b = bundle("signals", &Spec::new(&["true"]));
    for (sig, code) in [("KILL", 137), ("TERM", 143)] {
        // Without a pid namespace the shell is not an init, so it can die of
        // a signal it does not handle.
        let mut spec = Spec::new(&["sh", "-c", &format!("kill -{sig} $$")]);
        spec.namespaces = vec!["ipc", "uts", "mount", "network"];
        write_config(&b.0, &spec);
        let id = id(&format!("sig{sig}"));
        let out = hull_run(&b.0, &id, None);
        assert_eq!(out.code(), Some(code), "{out:?}");
        assert_cleaned_up(&id);
    }
}

#[test]
fn a_signal_to_hull_run_reaches_the_workload() {
    let mut spec = Spec::new(&["sh", "-c", "echo up; exec sleep 1000"]);
    spec.namespaces = vec!["ipc", "uts", "mount", "network"];
    let b = bundle("fwd", &spec);
    let id = id("fwd");
    let run = HullRun::start(&b.0, &id, None);
    // The workload says "up" once it runs; only then is SIGTERM sent.
    run.wait_for_stdout("up\n");
    // SAFETY: plain kill of our own child.
    unsafe { libc::kill(run.child.id() as i32, libc::SIGTERM) };
    let out = run.finish();
    assert_eq!(out.code(), Some(143), "{out:?}");
    assert_cleaned_up(&id);
}

#[test]
fn env_cwd_user_and_hostname_are_the_specs() {
    let mut spec = Spec::new(&["sh", "-c", "echo $FOO; pwd; id -u; id -g; id -G; hostname"]);
    spec.env.push("FOO=bar baz".into());
    spec.cwd = "/home/user".into();
    spec.uid = 1000;
    spec.gid = 1000;
    spec.hostname = "box".into();
    let b = bundle("ident", &spec);
    let id = id("ident");
    let out = hull_run(&b.0, &id, None);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(
        out.stdout_str(),
        "bar baz\n/home/user\n1000\n1000\n1000\nbox\n"
    );
    assert_cleaned_up(&id);
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn ten_mib_of_stdin_comes_back_byte_exact() {
    let b = bundle("stdin", &Spec::new(&["cat"]));
    let data = pattern(10 << 20, 7);
    let id = id("stdin");
    let out = hull_run(&b.0, &id, Some(data.clone()));
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout == data,
        "stdout differs ({} bytes)",
        out.stdout.len()
    );
    assert_cleaned_up(&id);
}

#[test]
fn hundred_mib_of_stdout_byte_exact() {
    let b = bundle("bulk", &Spec::new(&["cat", "/data"]));
    let data = pattern(100 << 20, 11);
    std::fs::write(b.0.join("rootfs/data"), &data).unwrap();
    let id = id("bulk");
    let started = std::time::Instant::now();
    let out = hull_run(&b.0, &id, None);
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout == data,
        "stdout differs ({} bytes)",
        out.stdout.len()
    );
    eprintln!(
        "e2e: 100 MiB through stdout in {secs:.1}s ({:.1} MiB/s, boot included)",
        100.0 / secs
    );
    assert_cleaned_up(&id);
}

#[test]
fn files_are_shared_both_ways_through_the_rootfs() {
    let spec = Spec::new(&["sh", "-c", "cat /from-host; echo from-guest > /from-guest"]);
    let b = bundle("share", &spec);
    std::fs::write(b.0.join("rootfs/from-host"), "hello from the host\n").unwrap();
    let id = id("share");
    let out = hull_run(&b.0, &id, None);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout_str(), "hello from the host\n");
    let back = std::fs::read_to_string(b.0.join("rootfs/from-guest")).unwrap();
    assert_eq!(back, "from-guest\n");
    assert_cleaned_up(&id);
}

#[test]
fn the_guest_cannot_reach_host_files_outside_the_rootfs() {
    let spec = Spec::new(&[
        "sh",
        "-c",
        "cat /leak /../../../secret /../secret 2>/dev/null; ls -a /.. | tr '\\n' ' '",
    ]);
    let b = bundle("escape", &spec);
    let secret = b.0.join("secret");
    std::fs::write(&secret, "TOP-SECRET-HOST-FILE\n").unwrap();
    std::os::unix::fs::symlink(&secret, b.0.join("rootfs/leak")).unwrap();
    let id = id("escape");
    let out = hull_run(&b.0, &id, None);
    assert!(!out.stdout_str().contains("TOP-SECRET"), "{out:?}");
    assert!(
        out.stdout_str().contains("bin"),
        "the listing of / is missing: {out:?}"
    );
    assert!(!out.stdout_str().contains("config.json"), "{out:?}");
    assert_cleaned_up(&id);
}

#[test]
fn a_readonly_rootfs_refuses_writes() {
    let mut spec = Spec::new(&["sh", "-c", "touch /newfile"]);
    spec.readonly = true;
    let b = bundle("ro", &spec);
    let id = id("ro");
    let out = hull_run(&b.0, &id, None);
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert!(out.stderr.contains("Read-only file system"), "{out:?}");
    assert!(!Path::new(&b.0.join("rootfs/newfile")).exists());
    assert_cleaned_up(&id);
}

#[test]
fn a_missing_command_is_a_clear_error() {
    let b = bundle("missing", &Spec::new(&["no-such-command"]));
    let id = id("missing");
    let out = hull_run(&b.0, &id, None);
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert!(
        out.stderr
            .contains("executable file not found in $PATH: no-such-command"),
        "{out:?}"
    );
    assert_cleaned_up(&id);
}

#[test]
fn four_sandboxes_at_once() {
    let runs: Vec<(String, Scratch, HullRun)> = (0..4)
        .map(|i| {
            let spec = Spec::new(&[
                "sh",
                "-c",
                &format!("echo sandbox {i}; read c </proc/1/comm; echo $c"),
            ]);
            let b = bundle(&format!("four{i}"), &spec);
            let id = id(&format!("four{i}"));
            let run = HullRun::start(&b.0, &id, None);
            (id, b, run)
        })
        .collect();
    for (i, (id, _b, run)) in runs.into_iter().enumerate() {
        let out = run.finish();
        assert_eq!(out.code(), Some(0), "{out:?}");
        assert_eq!(out.stdout_str(), format!("sandbox {i}\nsh\n"));
        assert_cleaned_up(&id);
    }
}

#[test]
fn a_guest_that_dies_mid_run_is_reported() {
    // In the guest's own pid namespace with CAP_SYS_BOOT, reboot(2) resets
    // the VM under the running workload.
    let mut spec = Spec::new(&["sh", "-c", "echo before; reboot -f; sleep 1000"]);
    spec.namespaces = vec!["ipc", "uts", "mount", "network"];
    let b = bundle("crash", &spec);
    let mut config = spec.config();
    for set in ["bounding", "effective", "permitted"] {
        config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push("CAP_SYS_BOOT".into());
    }
    std::fs::write(b.0.join("config.json"), config.to_string()).unwrap();
    let id = id("crash");
    let out = hull_run(&b.0, &id, None);
    assert!(!out.timed_out, "{out:?}");
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert!(
        out.stderr.contains("sandbox VM exited unexpectedly"),
        "{out:?}"
    );
    assert_cleaned_up(&id);
}

#[test]
fn a_malformed_bundle_is_refused_without_booting() {
    let b = bundle("badcfg", &Spec::new(&["true"]));
    std::fs::write(b.0.join("config.json"), "{ \"process\": ").unwrap();
    let id = id("badcfg");
    let out = hull_run(&b.0, &id, None);
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("config.json"), "{out:?}");
    std::fs::remove_dir_all(b.0.join("rootfs")).unwrap();
    write_config(&b.0, &Spec::new(&["true"]));
    let out = hull_run(&b.0, &id, None);
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("rootfs"), "{out:?}");
    assert_cleaned_up(&id);
}

#[test]
fn limits_capabilities_and_masked_paths_are_the_specs() {
    let script = "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; ulimit -n; \
                  echo \"[$(cat /masked)]\"; echo x > /rodir/f 2>/dev/null || echo rodir-refused; \
                  cat /proc/sys/net/core/somaxconn; echo 12 > /proc/sys/kernel/msgmni 2>/dev/null || echo proc-sys-ro";
    let spec = Spec::new(&["sh", "-c", script]);
    let b = bundle("limits", &spec);
    std::fs::write(b.0.join("rootfs/masked"), "visible").unwrap();
    std::fs::create_dir(b.0.join("rootfs/rodir")).unwrap();
    let mut config = spec.config();
    config["process"]["rlimits"][0] =
        serde_json::json!({"type": "RLIMIT_NOFILE", "hard": 777, "soft": 555});
    config["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push("/masked".into());
    config["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push("/rodir".into());
    config["linux"]["sysctl"] = serde_json::json!({"net.core.somaxconn": "321"});
    std::fs::write(b.0.join("config.json"), config.to_string()).unwrap();
    let id = id("limits");
    let out = hull_run(&b.0, &id, None);
    assert_eq!(out.code(), Some(0), "{out:?}");
    // The spec's caps: CHOWN DAC_OVERRIDE FOWNER KILL SETGID SETUID NET_BIND_SERVICE AUDIT_WRITE.
    assert_eq!(
        out.stdout_str(),
        "CapEff:\t00000000200004eb\nCapBnd:\t00000000200004eb\nNoNewPrivs:\t1\n555\n[]\nrodir-refused\n321\nproc-sys-ro\n"
    );
    assert_cleaned_up(&id);
}

#[test]
fn bind_mounts_of_host_paths_honour_ro() {
    let script = "cat /ro/in; echo no > /ro/out 2>/dev/null || echo ro-refused; \
                  echo yes > /var/run/rw/out; ls /run";
    let spec = Spec::new(&["sh", "-c", script]);
    let b = bundle("binds", &spec);
    let (ro, rw) = (b.0.join("host-ro"), b.0.join("host-rw"));
    std::fs::create_dir(&ro).unwrap();
    std::fs::create_dir(&rw).unwrap();
    std::fs::write(ro.join("in"), "from a ro bind\n").unwrap();
    // A destination through an absolute symlink of the image resolves in the
    // rootfs (/var/run -> /run), as runc does.
    std::fs::create_dir_all(b.0.join("rootfs/var")).unwrap();
    std::fs::create_dir_all(b.0.join("rootfs/run")).unwrap();
    std::os::unix::fs::symlink("/run", b.0.join("rootfs/var/run")).unwrap();
    let mut config = spec.config();
    let mounts = config["mounts"].as_array_mut().unwrap();
    mounts.push(serde_json::json!({"destination": "/ro", "type": "bind",
        "source": ro.display().to_string(), "options": ["rbind", "ro"]}));
    mounts.push(
        serde_json::json!({"destination": "/var/run/rw", "type": "bind",
        "source": rw.display().to_string(), "options": ["rbind", "rw"]}),
    );
    std::fs::write(b.0.join("config.json"), config.to_string()).unwrap();
    let id = id("binds");
    let out = hull_run(&b.0, &id, None);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout_str(), "from a ro bind\nro-refused\nrw\n");
    assert!(!ro.join("out").exists());
    assert_eq!(std::fs::read_to_string(rw.join("out")).unwrap(), "yes\n");
    assert_cleaned_up(&id);
}
