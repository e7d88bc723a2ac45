//! hull-vmm is replaced by small shell scripts that behave like it.

use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use super::*;
use crate::testutil::TempDir;

const READY: &str = "hull-agent: ready boottime_us=7 cpus=1 mem_total_kib=2 virtio=- hwrng_bytes=0";

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
    let args = config(&dir, "").args().join(" ");
    assert_eq!(
        args,
        "--kernel /k --initrd /i --mem 256 --cpus 1 --console - \
         --vsock 3:/state/vsock.sock --fs hullshare=/state/share"
    );
}

#[test]
fn ready_then_killed() {
    let dir = TempDir::new("vmm-ready");
    let script = format!(
        "case \"$*\" in *'--fs hullshare=/state/share'*) ;; *) exit 3;; esac\n\
         echo booting; echo '{READY}'; echo 'vmm says hi' >&2; exec sleep 60"
    );
    let mut vmm = spawn(&config(&dir, &script));
    let ready = vmm.wait_ready(Duration::from_secs(30)).unwrap().unwrap();
    assert_eq!(ready.boottime_us, 7);
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
fn an_exit_before_ready_reports_the_console_tail() {
    let dir = TempDir::new("vmm-panic");
    let mut vmm = spawn(&config(
        &dir,
        "echo 'Kernel panic - not syncing: oops'; exit 1",
    ));
    let e = vmm.wait_ready(Duration::from_secs(30)).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, VmmError::ExitedBeforeReady { .. }), "{text}");
    assert!(text.contains("exit status: 1"), "{text}");
    assert!(
        text.contains("| Kernel panic - not syncing: oops"),
        "{text}"
    );
    assert_eq!(vmm.try_exit().and_then(|s| s.code()), Some(1));
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
    let vmm = spawn(&config(&dir, &format!("echo '{READY}'; exec sleep 60")));
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
