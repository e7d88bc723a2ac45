//! hull-vmm: boot one microVM from the command line.

use std::process::ExitCode;

use vmm::cli::{self, Command};
use vmm::{RunReport, Vm};

fn timings_json(report: &RunReport) -> String {
    let t = &report.timings;
    let opt = |v: Option<u64>| v.map_or("null".to_string(), |v| v.to_string());
    format!(
        "{{\"vmm_start_ns\":{},\"first_kvm_run_ns\":{},\"agent_ready_ns\":{},\"end_ns\":{},\
         \"vmm_rss_kib\":{},\"guest_rss_kib\":{},\"exit\":\"{:?}\"}}",
        t.vmm_start_ns,
        opt(t.first_kvm_run_ns),
        opt(t.agent_ready_ns),
        t.end_ns,
        t.vmm_rss_kib,
        t.guest_rss_kib,
        report.exit
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
    let report = match Vm::new(config).and_then(Vm::run) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("hull-vmm: {e}");
            return ExitCode::FAILURE;
        }
    };
    if timings {
        eprintln!("{}", timings_json(&report));
    }
    if report.exit.is_clean() {
        ExitCode::SUCCESS
    } else {
        eprintln!("hull-vmm: {}", report.exit);
        ExitCode::FAILURE
    }
}
