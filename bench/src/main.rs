//! hull-bench: boot benchmarks, measured side by side in one run.
//!
//!   hull-bench boot   [--runs N] [--mem MIB] [--vmm P] [--kernel K] [--initrd I] [--qemu P]
//!   hull-bench native [--runs N] [--vmm P] [--kernel K] [--initrd I]
//!   hull-bench netrr  server [--listen A:P] | client --connect A:P [--count N]
//!
//! `boot` alternates hull-vmm and `qemu-system-x86_64 -M microvm` booting the
//! same vmlinux + initramfs with the same command line, and times each from
//! spawn to the agent's ready line on the console (read the same way for
//! both). For hull it also reports the VMM's own phases (spawn → first
//! KVM_RUN → agent ready on the event port) and both VMMs' resident memory
//! outside guest RAM (see measure.rs for how each is counted).
//! `native` times spawn → first KVM_RUN of hull-vmm on the local /dev/kvm,
//! which works even where the guest cannot boot.
//! `netrr` is the TCP request/response latency tool of `make bench-net`
//! (netrr.rs).

mod measure;
mod netrr;
mod report;

use anyhow::{bail, Context, Result};

use measure::{Options, Sample};

fn parse(args: &[String]) -> Result<(String, Options)> {
    let mut it = args.iter();
    let mode = it.next().cloned().unwrap_or_default();
    let mut o = Options::default();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .with_context(|| format!("missing value for {flag}"))
        };
        match flag.as_str() {
            "--runs" => o.runs = value()?.parse().context("--runs")?,
            "--mem" => o.mem_mib = value()?.parse().context("--mem")?,
            "--vmm" => o.vmm = value()?.into(),
            "--kernel" => o.kernel = value()?.into(),
            "--initrd" => o.initrd = value()?.into(),
            "--qemu" => o.qemu = value()?.into(),
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok((mode, o))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("netrr") {
        return netrr::main(&args[1..]);
    }
    let (mode, o) = parse(&args)?;
    match mode.as_str() {
        "boot" => {
            let mut hull = Vec::new();
            let mut qemu = Vec::new();
            for i in 0..o.runs {
                // Alternate so drift in the machine's load hits both alike.
                let h = measure::hull_boot(&o).with_context(|| format!("hull run {i}"))?;
                let q = measure::qemu_boot(&o).with_context(|| format!("qemu run {i}"))?;
                eprintln!("run {i}: hull {:.1} ms, qemu {:.1} ms", h.ready_ms, q.ready_ms);
                hull.push(h);
                qemu.push(q);
            }
            report::boot(&o, &hull, &qemu);
        }
        "native" => {
            let samples: Vec<Sample> = (0..o.runs)
                .map(|_| measure::native_first_run(&o))
                .collect::<Result<_>>()?;
            report::native(&o, &samples);
        }
        _ => bail!("usage: hull-bench boot|native|netrr [--runs N] [--mem MIB] [--vmm P] [--kernel K] [--initrd I] [--qemu P]"),
    }
    Ok(())
}
