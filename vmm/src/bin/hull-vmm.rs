//! hull-vmm: boot one microVM from the command line.

use std::process::ExitCode;

use vmm::cli::{self, Command};
use vmm::{Milestone, Timings, Vm};

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

fn main() -> ExitCode {
    let (config, timings) = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run { config, timings }) => (config, timings),
        Ok(Command::Help) => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("hull-vmm {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("hull-vmm: {e}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
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
    let report = match Vm::new(config).and_then(|vm| vm.run_observed(&mut observe)) {
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
