//! `hull update [OPTIONS] ID`: changes the container's resource limits.
//! They apply to the container's cgroup inside its VM (memory.max, cpu.max,
//! cpu.weight, pids.max). The VM itself is not resized: a memory limit
//! beyond the guest's RAM is refused, and limits hull cannot apply
//! (cpusets, block I/O, real-time, kernel memory, swap) are refused by
//! name. With `-r FILE` (`-` for stdin) the OCI `linux.resources` JSON is
//! read; of it, memory, cpu and pids limits apply and the rest is ignored.

use std::io::Read;

use anyhow::{bail, Context};

use super::args::{self, opt, Flag, Parsed};
use super::container::Container;
use crate::Global;
use runtime::bundle::spec::resources::{Cpu, LinuxResources, Memory, Pids};
use runtime::host::resources::{agent_resources, parse_memory_size};
use runtime::state::ContainerStatus;

pub const USAGE: &str = "usage: hull update [--memory N] [--cpu-quota N] [--cpu-period N] [--cpu-share N] [--pids-limit N] [-r FILE] ID";

const FLAGS: &[Flag] = &[
    opt(&["-r", "--resources"]),
    opt(&["--memory"]),
    opt(&["--cpu-quota"]),
    opt(&["--cpu-period"]),
    opt(&["--cpu-share"]),
    opt(&["--pids-limit"]),
    opt(&["--memory-reservation"]),
    opt(&["--memory-swap"]),
    opt(&["--kernel-memory"]),
    opt(&["--kernel-memory-tcp"]),
    opt(&["--cpuset-cpus"]),
    opt(&["--cpuset-mems"]),
    opt(&["--blkio-weight"]),
    opt(&["--cpu-rt-period"]),
    opt(&["--cpu-rt-runtime"]),
    opt(&["--l3-cache-schema"]),
    opt(&["--mem-bw-schema"]),
];

const UNSUPPORTED: [&str; 11] = [
    "--memory-reservation",
    "--memory-swap",
    "--kernel-memory",
    "--kernel-memory-tcp",
    "--cpuset-cpus",
    "--cpuset-mems",
    "--blkio-weight",
    "--cpu-rt-period",
    "--cpu-rt-runtime",
    "--l3-cache-schema",
    "--mem-bw-schema",
];

pub fn main(global: &Global, argv: &[String]) -> anyhow::Result<i32> {
    let parsed = args::parse(argv, FLAGS, false)?;
    let id = parsed.id("update")?;
    if let Some(flag) = UNSUPPORTED.iter().find(|f| parsed.has(f)) {
        bail!("{flag} is not supported by hull: the container runs in a VM whose guest cgroup takes memory, cpu quota/period/shares and pids limits only");
    }
    let resources = resources(&parsed)?;
    let c = Container::load(global, id)?;
    c.require(|s| matches!(s, ContainerStatus::Created | ContainerStatus::Running))?;
    check_fits(&resources, c.state.hull.mem_mib)?;
    c.agent()?.update(id, agent_resources(&resources))?;
    Ok(0)
}

/// The resources asked for, from `-r` and the flags (flags win).
fn resources(parsed: &Parsed) -> anyhow::Result<LinuxResources> {
    let mut r = match parsed.value("--resources") {
        Some(path) => {
            let mut text = String::new();
            if path == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text =
                    std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
            }
            runtime::bundle::spec::resources::parse(&text).context("invalid resources JSON")?
        }
        None => LinuxResources::default(),
    };
    if let Some(m) = parsed.value("--memory") {
        r.memory.get_or_insert_with(Memory::default).limit = Some(parse_memory_size(m)?);
    }
    fn cpu(r: &mut LinuxResources) -> &mut Cpu {
        r.cpu.get_or_insert_with(Cpu::default)
    }
    if let Some(q) = parsed.number::<i64>("--cpu-quota")? {
        cpu(&mut r).quota = Some(q);
    }
    if let Some(p) = parsed.number::<u64>("--cpu-period")? {
        cpu(&mut r).period = Some(p);
    }
    if let Some(s) = parsed.number::<u64>("--cpu-share")? {
        cpu(&mut r).shares = Some(s);
    }
    if let Some(p) = parsed.number::<i64>("--pids-limit")? {
        r.pids.get_or_insert_with(Pids::default).limit = Some(p);
    }
    Ok(r)
}

/// A memory limit must fit in the VM, which cannot grow.
fn check_fits(r: &LinuxResources, vm_mib: u32) -> anyhow::Result<()> {
    let limit = r.memory.as_ref().and_then(|m| m.limit).unwrap_or(0);
    if vm_mib > 0 && limit > i64::from(vm_mib) << 20 {
        bail!(
            "memory limit {limit} bytes is more than the VM's {vm_mib} MiB: hull cannot resize a running VM (recreate the container with the new limit)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str) -> Parsed {
        let a: Vec<String> = line.split_whitespace().map(String::from).collect();
        args::parse(&a, FLAGS, false).unwrap()
    }

    #[test]
    fn flags_become_resources_and_limits_are_checked() {
        let r = resources(&parsed(
            "--memory 64m --cpu-quota 50000 --cpu-period 100000 --pids-limit 10 c",
        ))
        .unwrap();
        assert_eq!(r.memory.as_ref().unwrap().limit, Some(64 << 20));
        assert_eq!(r.cpu.as_ref().unwrap().quota, Some(50000));
        assert_eq!(r.cpu.as_ref().unwrap().period, Some(100000));
        assert_eq!(r.pids.as_ref().unwrap().limit, Some(10));
        assert!(check_fits(&r, 256).is_ok());
        let e = check_fits(&r, 32).unwrap_err().to_string();
        assert!(e.contains("cannot resize a running VM"), "{e}");
        assert!(resources(&parsed("--memory lots c")).is_err());
    }
}
