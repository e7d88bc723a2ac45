//! `hull update [OPTIONS] ID`: changes the container's resource limits.
//! They apply to the container's cgroup inside its VM (memory.max, cpu.max,
//! cpu.weight, pids.max). The VM itself is not resized: a memory limit
//! beyond the guest's RAM is refused, and limits hull cannot apply
//! (cpusets, block I/O, real-time, kernel memory, swap) are refused by
//! name. With `-r FILE` (`-` for stdin) the OCI `linux.resources` JSON is
//! read; of it, memory, cpu and pids limits apply and the rest is ignored.

use std::io::Read;

use anyhow::{bail, Context};

use crate::Global;
use runtime::bundle::spec::resources::{Cpu, LinuxResources, Memory, Pids};
use runtime::host::resources::{agent_resources, parse_memory_size};
use runtime::state::ContainerStatus;

/// `update [OPTIONS] ID`, runc's flags (liboci-cli's take no `64m` sizes
/// and no `--cpu-quota -1`). The limits hull cannot apply are taken as
/// text and refused by name.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// Read the new limits from this OCI linux.resources JSON file (- for stdin)
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<String>,
    /// Memory limit: bytes, or a number with k, m, g or t
    #[arg(long)]
    pub memory: Option<String>,
    /// CPU CFS quota in microseconds (-1: none)
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPU shares (relative weight)
    #[arg(long)]
    pub cpu_share: Option<u64>,
    /// Maximum number of processes (-1: none)
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    #[command(flatten)]
    pub unsupported: Unsupported,
    /// Container identifier
    #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub container_id: String,
}

/// runc's flags for limits a VM's guest cgroup does not take here.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct Unsupported {
    #[arg(long, hide = true, allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    #[arg(long, hide = true, allow_hyphen_values = true)]
    memory_swap: Option<String>,
    #[arg(long, hide = true, allow_hyphen_values = true)]
    kernel_memory: Option<String>,
    #[arg(long, hide = true, allow_hyphen_values = true)]
    kernel_memory_tcp: Option<String>,
    #[arg(long, hide = true)]
    cpuset_cpus: Option<String>,
    #[arg(long, hide = true)]
    cpuset_mems: Option<String>,
    #[arg(long, hide = true)]
    blkio_weight: Option<String>,
    #[arg(long, hide = true)]
    cpu_rt_period: Option<String>,
    #[arg(long, hide = true)]
    cpu_rt_runtime: Option<String>,
    #[arg(long, hide = true)]
    l3_cache_schema: Option<String>,
    #[arg(long, hide = true)]
    mem_bw_schema: Option<String>,
}

impl Unsupported {
    /// The first unsupported flag given.
    fn first(&self) -> Option<&'static str> {
        [
            ("--memory-reservation", &self.memory_reservation),
            ("--memory-swap", &self.memory_swap),
            ("--kernel-memory", &self.kernel_memory),
            ("--kernel-memory-tcp", &self.kernel_memory_tcp),
            ("--cpuset-cpus", &self.cpuset_cpus),
            ("--cpuset-mems", &self.cpuset_mems),
            ("--blkio-weight", &self.blkio_weight),
            ("--cpu-rt-period", &self.cpu_rt_period),
            ("--cpu-rt-runtime", &self.cpu_rt_runtime),
            ("--l3-cache-schema", &self.l3_cache_schema),
            ("--mem-bw-schema", &self.mem_bw_schema),
        ]
        .into_iter()
        .find_map(|(flag, v)| v.is_some().then_some(flag))
    }
}

pub fn main(global: &Global, args: &Args) -> anyhow::Result<i32> {
    let id = args.container_id.as_str();
    if let Some(flag) = args.unsupported.first() {
        bail!("{flag} is not supported by hull: the container runs in a VM whose guest cgroup takes memory, cpu quota/period/shares and pids limits only");
    }
    let c = super::container::load(global, id)?;
    let created = c.spec().ok();
    let current = created
        .as_ref()
        .and_then(|s| s.linux().as_ref())
        .and_then(|l| l.resources().as_ref());
    let resources = resources(args, current)?;
    c.require(|s| matches!(s, ContainerStatus::Created | ContainerStatus::Running))?;
    check_fits(&resources, c.state.hull.mem_mib)?;
    c.update(agent_resources(&resources))?;
    Ok(0)
}

/// The resources asked for, from `-r` and the flags (flags win).
fn resources(
    args: &Args,
    current: Option<&oci_spec::runtime::LinuxResources>,
) -> anyhow::Result<LinuxResources> {
    let mut r = match args.resources.as_deref() {
        Some(path) => {
            let mut text = String::new();
            if path == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text =
                    std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
            }
            runtime::bundle::spec::resources::parse_update(&text, current)
                .map_err(anyhow::Error::msg)?
        }
        None => LinuxResources::default(),
    };
    if let Some(m) = args.memory.as_deref() {
        r.memory.get_or_insert_with(Memory::default).limit = Some(parse_memory_size(m)?);
    }
    fn cpu(r: &mut LinuxResources) -> &mut Cpu {
        r.cpu.get_or_insert_with(Cpu::default)
    }
    if let Some(q) = args.cpu_quota {
        cpu(&mut r).quota = Some(q);
    }
    if let Some(p) = args.cpu_period {
        cpu(&mut r).period = Some(p);
    }
    if let Some(s) = args.cpu_share {
        cpu(&mut r).shares = Some(s);
    }
    if let Some(p) = args.pids_limit {
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

    fn parsed(line: &str) -> Args {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cmd {
            #[command(flatten)]
            args: Args,
        }
        let argv = std::iter::once("update").chain(line.split_whitespace());
        Cmd::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn flags_become_resources_and_limits_are_checked() {
        let r = resources(
            &parsed("--memory 64m --cpu-quota 50000 --cpu-period 100000 --pids-limit 10 c"),
            None,
        )
        .unwrap();
        assert_eq!(r.memory.as_ref().unwrap().limit, Some(64 << 20));
        assert_eq!(r.cpu.as_ref().unwrap().quota, Some(50000));
        assert_eq!(r.cpu.as_ref().unwrap().period, Some(100000));
        assert_eq!(r.pids.as_ref().unwrap().limit, Some(10));
        assert!(check_fits(&r, 256).is_ok());
        let e = check_fits(&r, 32).unwrap_err().to_string();
        assert!(e.contains("cannot resize a running VM"), "{e}");
        assert!(resources(&parsed("--memory lots c"), None).is_err());
        let a = parsed("--cpu-quota -1 --pids-limit=-1 --memory-swap -1 c");
        assert_eq!((a.cpu_quota, a.pids_limit), (Some(-1), Some(-1)));
        assert_eq!(a.unsupported.first(), Some("--memory-swap"));
        assert_eq!(parsed("-r - c").resources.as_deref(), Some("-"));
    }
}
