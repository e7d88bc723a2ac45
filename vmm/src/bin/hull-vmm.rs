//! hull-vmm: boot one microVM from the command line.

use std::process::ExitCode;

use vmm::control::{ControlChannel, ControlSender};
use vmm::devices::virtio::thread::panic_message;
use vmm::{cli, Milestone, Timings, Vm};
use vmm_control::{truncate_text, Event};

/// One `--timings` JSON line: every timestamp is CLOCK_MONOTONIC ns, so a
/// harness can subtract its own reading taken before it spawned us.
fn timings_line(event: &str, t: &Timings, exit: Option<&str>) -> String {
    let opt = |v: Option<u64>| v.map_or("null".to_string(), |v| v.to_string());
    let exit = exit.map_or(String::new(), |e| format!(",\"exit\":\"{e}\""));
    format!(
        "{{\"event\":\"{event}\",\"vmm_start_ns\":{},\"first_kvm_run_ns\":{},\
         \"agent_ready_ns\":{},\"end_ns\":{},\"vmm_rss_kib\":{},\"guest_rss_kib\":{}{exit}}}",
        t.vmm_start_ns,
        opt(t.first_kvm_run_ns),
        opt(t.agent_ready_ns),
        if t.end_ns == 0 {
            "null".to_string()
        } else {
            t.end_ns.to_string()
        },
        t.vmm_rss_kib,
        t.guest_rss_kib,
    )
}

/// Reports a panic on the control channel before the default hook runs
/// (release builds abort on panic, so nothing else could): a vCPU thread's
/// as `vcpu_failed`, a device thread's (named after its device) as
/// `device_failed`, any other as `failed`.
fn report_panics(control: ControlSender) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed").to_string();
        let error = truncate_text(format!("panicked: {}", panic_message(info.payload())));
        let event = if name.starts_with("vcpu") {
            Event::VcpuFailed { error }
        } else if name.starts_with("virtio-") {
            Event::DeviceFailed {
                device: name,
                error,
            }
        } else {
            Event::Failed { error }
        };
        control.event(vmm::clock::monotonic_ns(), event);
        default(info);
    }));
}

fn main() -> ExitCode {
    let args = match cli::parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    let control = match args.control_fd.map(ControlChannel::from_inherited_fd) {
        None => None,
        Some(Ok(control)) => Some(control),
        Some(Err(e)) => {
            eprintln!("hull-vmm: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(control) = &control {
        report_panics(control.sender());
    }
    let timings = args.timings;
    let mut observe = |m: Milestone<'_>| {
        if timings {
            match m {
                Milestone::FirstKvmRun(t) => {
                    eprintln!("{}", timings_line("first_kvm_run", t, None))
                }
                Milestone::AgentReady(t) => eprintln!("{}", timings_line("agent_ready", t, None)),
            }
        }
    };
    let built = Vm::new(args.config).and_then(|mut vm| {
        if let Some(control) = &control {
            vm.attach_control(control)?;
        }
        Ok(vm)
    });
    let outcome = match built {
        Ok(vm) => vm.run_observed(&mut observe),
        Err(e) => {
            if let Some(control) = &control {
                let error = truncate_text(e.to_string());
                control
                    .sender()
                    .event(vmm::clock::monotonic_ns(), Event::Failed { error });
            }
            Err(e)
        }
    };
    let report = match outcome {
        Ok(report) => report,
        Err(e) => {
            eprintln!("hull-vmm: {e}");
            return ExitCode::FAILURE;
        }
    };
    if timings {
        let exit = format!("{:?}", report.exit);
        eprintln!("{}", timings_line("exit", &report.timings, Some(&exit)));
    }
    if report.exit.is_clean() {
        ExitCode::SUCCESS
    } else {
        eprintln!("hull-vmm: {}", report.exit);
        ExitCode::FAILURE
    }
}
