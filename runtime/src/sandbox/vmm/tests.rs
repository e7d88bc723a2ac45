//! hull-vmm is replaced by small shell scripts that behave like it: each
//! `printf … >&3` is one packet on the control channel.

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::testutil::TempDir;

/// The messages a booting hull-vmm sends, as shell commands.
const HELLO: &str = r#"printf '{"seq":1,"ns":10,"body":{"event":{"hello":{"version":1}}}}' >&3"#;
const FIRST_RUN: &str = r#"printf '{"seq":2,"ns":20,"body":{"event":"first_kvm_run"}}' >&3"#;
const READY: &str = r#"printf '{"seq":3,"ns":30,"body":{"event":{"agent_ready":{"vmm_rss_kib":1,"guest_rss_kib":2}}}}' >&3"#;
/// The console line a real agent prints: only a log now.
const READY_LINE: &str =
    "hull-agent: ready boottime_us=7 cpus=1 mem_total_kib=2 virtio=- hwrng_bytes=0";

fn config(dir: &TempDir, script: &str) -> VmmConfig {
    let vmm = dir.path().join("fake-vmm");
    std::fs::write(&vmm, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&vmm, std::fs::Permissions::from_mode(0o755)).unwrap();
    VmmConfig {
        artifacts: Artifacts {
            vmm,
            kernel: "/k".into(),
            initrd: "/i".into(),
        },
        mem_mib: 256,
        cpus: 1,
        share_dir: "/state/share".into(),
        vsock_socket: "/state/vsock.sock".into(),
        nics: Vec::new(),
    }
}

/// Spawns, retrying while another test's fork still holds the new script
/// open for writing (ETXTBSY).
fn spawn(config: &VmmConfig) -> Vmm {
    let mut tries = 0;
    loop {
        match Vmm::spawn(config, Console::default()) {
            Err(VmmError::Spawn { source, .. })
                if source.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 =>
            {
                tries += 1;
                thread::sleep(Duration::from_millis(20));
            }
            other => return other.unwrap(),
        }
    }
}

#[test]
fn arguments_name_the_share_the_socket_and_the_console() {
    let dir = TempDir::new("vmm-args");
    let args = config(&dir, "").args(&[]).join(" ");
    assert_eq!(
        args,
        "--kernel /k --initrd /i --mem 256 --cpus 1 --console - \
         --vsock 3:/state/vsock.sock --fs hullshare=/state/share --control-fd 3"
    );
}

#[test]
fn each_nic_is_an_inherited_fd_with_its_mac_and_mtu() {
    use std::os::fd::AsRawFd;
    let dir = TempDir::new("vmm-nics");
    // Any open fd stands in for a tap: the fake VMM checks that the fds
    // the arguments name are open in it (their numbers depend on what else
    // the test process has open).
    let (a, b) = nix::unistd::pipe().unwrap();
    let script = format!(
        "case \"$*\" in *'--net fd='*',mac=02:42:ac:11:00:02,mtu=1500 --net fd='*',mac=02:42:ac:11:00:03,mtu=9000') ;; *) exit 3;; esac\n\
         n=0; for a in \"$@\"; do case \"$a\" in fd=*) f=${{a#fd=}}; f=${{f%%,*}}; \
         [ \"$f\" -ge 10 ] && [ -e /proc/self/fd/$f ] || exit 4; n=$((n+1));; esac; done\n\
         [ $n = 2 ] || exit 5\n\
         {HELLO}; {FIRST_RUN}; {READY}; exec sleep 60"
    );
    let mut config = config(&dir, &script);
    config.nics = vec![
        Nic {
            fd: a.as_raw_fd(),
            mac: "02:42:ac:11:00:02".parse().unwrap(),
            mtu: 1500,
        },
        Nic {
            fd: b.as_raw_fd(),
            mac: "02:42:ac:11:00:03".parse().unwrap(),
            mtu: 9000,
        },
    ];
    let mut vmm = spawn(&config);
    vmm.wait_ready(Duration::from_secs(30)).unwrap();
    vmm.killer().kill();
    vmm.wait_exit();
}

#[test]
fn ready_then_killed() {
    let dir = TempDir::new("vmm-ready");
    let script = format!(
        "case \"$*\" in *'--fs hullshare=/state/share'*) ;; *) exit 3;; esac\n\
         echo booting; echo 'vmm says hi' >&2; {HELLO}; {FIRST_RUN}; {READY}; exec sleep 60"
    );
    let mut vmm = spawn(&config(&dir, &script));
    let booted = vmm.wait_ready(Duration::from_secs(30)).unwrap();
    assert_eq!(
        booted,
        Booted {
            first_kvm_run_ns: Some(20),
            agent_ready_ns: 30
        }
    );
    assert_eq!(vmm.try_exit(), None);
    vmm.killer().kill();
    let status = vmm.wait_exit();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let tail = vmm.console_tail();
    assert!(
        tail.contains("| booting") && tail.contains("! vmm says hi"),
        "{tail}"
    );
    vmm.killer().kill(); // reaped already: a no-op
}

#[test]
fn an_exit_before_ready_reports_the_end_event_and_the_console_tail() {
    let dir = TempDir::new("vmm-panic");
    let mut vmm = spawn(&config(
        &dir,
        &format!(
            "{HELLO}; echo 'Kernel panic - not syncing: oops'; \
             printf '{{\"seq\":2,\"ns\":20,\"body\":{{\"event\":\"reset\"}}}}' >&3; exit 1"
        ),
    ));
    let e = vmm.wait_ready(Duration::from_secs(30)).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, VmmError::ExitedBeforeReady { .. }), "{text}");
    assert!(text.contains("exit status: 1"), "{text}");
    assert!(
        text.contains("hull-vmm reported: guest reset the machine"),
        "{text}"
    );
    assert!(
        text.contains("| Kernel panic - not syncing: oops"),
        "{text}"
    );
    assert_eq!(vmm.try_exit().and_then(|s| s.code()), Some(1));
}

#[test]
fn the_ready_line_on_the_console_is_not_readiness() {
    let dir = TempDir::new("vmm-console-ready");
    let mut vmm = spawn(&config(
        &dir,
        &format!("{HELLO}; echo '{READY_LINE}'; exec sleep 60"),
    ));
    let e = vmm.wait_ready(Duration::from_millis(300)).unwrap_err();
    assert!(matches!(e, VmmError::BootTimeout { .. }), "{e}");
}

#[test]
fn a_vmm_that_breaks_the_protocol_is_stopped() {
    let dir = TempDir::new("vmm-breach");
    let mut vmm = spawn(&config(&dir, &format!("{HELLO}; {READY}; exec sleep 60")));
    let e = vmm.wait_ready(Duration::from_secs(30)).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, VmmError::ControlBroken { .. }), "{text}");
    assert!(text.contains("sequence 3 after 1"), "{text}");
    assert_eq!(vmm.try_exit().and_then(|s| s.signal()), Some(libc::SIGKILL));
}

#[test]
fn a_device_failure_event_is_the_reported_end() {
    let dir = TempDir::new("vmm-device");
    let failed = r#"printf '{"seq":4,"ns":40,"body":{"event":{"device_failed":{"device":"virtio-fs:hullshare","error":"injected fault"}}}}' >&3"#;
    let mut vmm = spawn(&config(
        &dir,
        &format!("{HELLO}; {FIRST_RUN}; {READY}; {failed}; exit 1"),
    ));
    vmm.wait_ready(Duration::from_secs(30)).unwrap();
    match vmm.next_event(Duration::from_secs(30)) {
        Some(VmEvent::Vm {
            ns: 40,
            event: Event::DeviceFailed { device, error },
        }) => assert_eq!(
            (device.as_str(), error.as_str()),
            ("virtio-fs:hullshare", "injected fault")
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(vmm.wait_exit().code(), Some(1));
    assert!(
        vmm.console_tail()
            .starts_with("hull-vmm reported: device virtio-fs:hullshare failed: injected fault"),
        "{}",
        vmm.console_tail()
    );
}

#[test]
fn requests_go_out_on_the_control_fd_with_a_deadline() {
    let dir = TempDir::new("vmm-request");
    // One dd read is one packet: the request. The reply names its id (1),
    // and the log keeps the request for the test to see.
    let log = dir.path().join("requests");
    let script = format!(
        "{HELLO}; {FIRST_RUN}; {READY}; dd bs=4096 count=1 <&3 >'{}' 2>/dev/null; \
         printf '{{\"seq\":4,\"ns\":40,\"body\":{{\"reply\":{{\"id\":1,\"reply\":{{\"done\":{{\"state\":\"paused\"}}}}}}}}}}' >&3; \
         exec sleep 60",
        log.display()
    );
    let mut vmm = spawn(&config(&dir, &script));
    vmm.wait_ready(Duration::from_secs(30)).unwrap();
    let control = vmm.control();
    control.pause(Duration::from_secs(30)).unwrap();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        r#"{"id":1,"request":"pause"}"#
    );
    // Nobody answers the second one.
    let e = control.resume(Duration::from_millis(100)).unwrap_err();
    assert!(matches!(e, ControlError::Timeout { .. }), "{e}");
    vmm.killer().kill();
    vmm.wait_exit();
    let e = control.shutdown(Duration::from_secs(30)).unwrap_err();
    assert!(
        matches!(e, ControlError::Closed | ControlError::Send { .. }),
        "{e}"
    );
}

#[test]
fn a_boot_that_never_gets_ready_times_out_and_is_killed() {
    let dir = TempDir::new("vmm-slow");
    let mut vmm = spawn(&config(&dir, "echo starting; exec sleep 60"));
    let start = Instant::now();
    let e = vmm.wait_ready(Duration::from_millis(300)).unwrap_err();
    assert!(matches!(e, VmmError::BootTimeout { .. }), "{e}");
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_eq!(vmm.try_exit().and_then(|s| s.signal()), Some(libc::SIGKILL));
}

#[test]
fn dropping_a_running_vmm_kills_and_reaps_it() {
    let dir = TempDir::new("vmm-drop");
    let vmm = spawn(&config(&dir, &format!("{HELLO}; exec sleep 60")));
    let start = Instant::now();
    drop(vmm);
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_missing_vmm_binary_is_named() {
    let mut c = config(&TempDir::new("vmm-missing"), "");
    c.artifacts.vmm = "/nonexistent/hull-vmm".into();
    let e = Vmm::spawn(&c, Console::default()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot start /nonexistent/hull-vmm"),
        "{e}"
    );
}
