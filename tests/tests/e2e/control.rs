//! The agent's control channel over the user-space virtio-vsock device, in a
//! real guest: hybrid vsock CONNECT, the version handshake, power-off.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use agent_protocol::wire::{self, ErrorCode, Request, Response, AGENT_PORT};
use agent_protocol::PROTOCOL_VERSION;
use hull_e2e::{boot_args, Live, Scratch};

#[test]
fn host_talks_to_the_agent_over_vsock_and_powers_it_off() {
    let scratch = Scratch::tmp("vsock");
    let uds = scratch.0.join("v.sock");
    let mut args = boot_args(2, 256);
    args.extend(["--vsock".into(), format!("3:{}", uds.display())]);
    let mut vm = Live::spawn(&args);
    let ready = vm.wait_ready();
    assert!(ready.is_some(), "agent never ready: {:?}", vm.finish());
    assert!(
        ready.iter().all(|r| r.virtio.contains(&19)),
        "vsock driver not bound: {ready:?}"
    );

    // Hybrid vsock: CONNECT <port>, then OK <host port>.
    let stream = UnixStream::connect(&uds).expect("connect to the vsock socket");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    writer
        .write_all(format!("CONNECT {AGENT_PORT}\n").as_bytes())
        .expect("write CONNECT");
    let mut ok = String::new();
    reader.read_line(&mut ok).expect("read OK");
    assert!(ok.starts_with("OK ") && ok.ends_with('\n'), "{ok:?}");

    let mut ask = |req: Request| -> Response {
        wire::send(&mut writer, &req).expect("send");
        wire::recv(&mut reader)
            .expect("recv")
            .expect("agent closed the channel")
    };
    // Anything before a good hello is refused, as is another version.
    let early = ask(Request::PowerOff);
    assert!(
        matches!(
            early,
            Response::Error {
                code: ErrorCode::HelloRequired,
                ..
            }
        ),
        "{early:?}"
    );
    let wrong = ask(Request::Hello {
        version: PROTOCOL_VERSION + 1,
    });
    assert!(
        matches!(
            wrong,
            Response::Error {
                code: ErrorCode::VersionMismatch,
                ..
            }
        ),
        "{wrong:?}"
    );
    match ask(Request::Hello {
        version: PROTOCOL_VERSION,
    }) {
        Response::Hello { version, ready } => {
            assert_eq!(version, PROTOCOL_VERSION);
            assert_eq!(ready.cpus, 2);
        }
        other => panic!("no hello: {other:?}"),
    }
    assert_eq!(ask(Request::PowerOff), Response::Ok);

    let run = vm.finish();
    assert!(!run.timed_out, "{run:?}");
    assert_eq!(
        run.code(),
        Some(0),
        "power-off through the agent must exit 0: {run:?}"
    );
    assert!(
        !uds.exists(),
        "the vsock socket must be removed when the VM ends"
    );
}

/// hull-vmm as the runtime starts it (`--control-fd`, a share and a vsock
/// socket), through the runtime's own `Vmm`; `wrapper` is a shell line run
/// instead of hull-vmm ("$@" are its arguments), or none.
fn runtime_vmm(scratch: &Scratch, wrapper: Option<&str>) -> runtime::sandbox::vmm::Vmm {
    use runtime::sandbox::vmm::{Vmm, VmmConfig, VmmError};
    let share = scratch.0.join("share");
    std::fs::create_dir_all(&share).expect("share dir");
    let mut vmm = hull_e2e::vmm_bin();
    if let Some(line) = wrapper {
        let script = format!(
            "#!/bin/sh\n{}\n",
            line.replace("HULL_VMM", &vmm.display().to_string())
        );
        let path = scratch.file("hull-vmm-wrapper", script.as_bytes());
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod wrapper");
        vmm = path;
    }
    let config = VmmConfig {
        artifacts: runtime::sandbox::Artifacts {
            vmm,
            kernel: hull_e2e::kernel(),
            initrd: hull_e2e::initrd(),
        },
        mem_mib: 256,
        cpus: 2,
        share_dir: share,
        vsock_socket: scratch.0.join("v.sock"),
        nics: Vec::new(),
    };
    // Another test's fork may hold the new script open for writing until
    // its exec (ETXTBSY): try again then.
    for _ in 0..50 {
        match Vmm::spawn(&config, runtime::sandbox::console::Console::default()) {
            Err(VmmError::Spawn { source, .. }) if source.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other.expect("spawn hull-vmm"),
        }
    }
    panic!("hull-vmm wrapper stayed busy (ETXTBSY)");
}

#[test]
fn the_runtime_pauses_resumes_and_stops_the_vm_over_the_control_channel() {
    use runtime::sandbox::vmm::VmEvent;
    use vmm_control::Event;
    let scratch = Scratch::tmp("vmm-control");
    let mut vmm = runtime_vmm(&scratch, None);
    let booted = vmm
        .wait_ready(hull_e2e::VM_DEADLINE)
        .unwrap_or_else(|e| panic!("agent never ready: {e}"));
    hull_e2e::record_boot("runtime Vmm over the control channel");
    let first = booted.first_kvm_run_ns.expect("first KVM_RUN reported");
    assert!(first < booted.agent_ready_ns, "{booted:?}");
    let control = vmm.control();
    let deadline = std::time::Duration::from_secs(60);
    control.pause(deadline).expect("pause");
    control
        .pause(deadline)
        .expect("pausing a paused VM is done at once");
    control.resume(deadline).expect("resume");
    control.pause(deadline).expect("pause again");
    control.shutdown(deadline).expect("shutdown while paused");
    match vmm.next_event(hull_e2e::VM_DEADLINE) {
        Some(VmEvent::Vm {
            event: Event::Stopped,
            ..
        }) => {}
        other => panic!("expected the stopped event, got {other:?}"),
    }
    assert_eq!(vmm.wait_exit().code(), Some(0), "{}", vmm.console_tail());
}

#[test]
fn a_failed_device_thread_is_an_event_and_an_error_exit() {
    use runtime::sandbox::vmm::VmEvent;
    use vmm_control::Event;
    let scratch = Scratch::tmp("vmm-device-fault");
    // The hidden fault injection fails the virtio-fs thread on its first
    // queue notification: the agent's mount of the share at boot.
    let mut vmm = runtime_vmm(
        &scratch,
        Some(r#"exec HULL_VMM "$@" --inject-device-fault virtio-fs:hullshare"#),
    );
    let mut events = Vec::new();
    while let Some(event) = vmm.next_event(hull_e2e::VM_DEADLINE) {
        match event {
            VmEvent::Vm { event, .. } => events.push(event),
            other => panic!("{other:?}"),
        }
    }
    let status = vmm.wait_exit();
    assert_eq!(status.code(), Some(1), "{}", vmm.console_tail());
    match events.last() {
        Some(Event::DeviceFailed { device, error }) => {
            assert_eq!(device, "virtio-fs:hullshare");
            assert!(error.starts_with("injected fault"), "{error}");
        }
        other => panic!("expected a device failure last, got {other:?} in {events:?}"),
    }
    assert!(
        vmm.console_tail()
            .starts_with("hull-vmm reported: device virtio-fs:hullshare failed"),
        "{}",
        vmm.console_tail()
    );
}
