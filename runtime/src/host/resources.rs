//! `linux.resources` on a microVM: the VM is sized from the limits
//! ([`vm_size`]), and the limits themselves are enforced inside the guest by
//! the container's cgroup v2 ([`agent_resources`] builds what the agent
//! applies at create and on `update`).
//!
//! Guest RAM for a memory limit of L MiB (rounded up):
//! `L + GUEST_OVERHEAD_MIB + ceil(L / 64)`, at least [`MIN_MEM_MIB`], and an
//! error above [`MAX_MEM_MIB`].
//! - `L / 64`: the kernel's `struct page` (64 bytes per 4 KiB page) for the
//!   workload's part of RAM.
//! - [`GUEST_OVERHEAD_MIB`] = 48: measured here, the guest kernel keeps
//!   about 14 MiB plus RAM/64 for itself at boot (MemTotal 114876 KiB of a
//!   128 MiB guest, 501372 KiB of a 512 MiB one); the rest, about 34 MiB,
//!   is room for what the guest cgroup does not charge to the container:
//!   the agent (a static binary of under 2 MiB, its tmpfs copy and its
//!   threads), kernel slabs, page tables, and the vsock and virtio-fs
//!   buffers.
//!
//! The guest cgroup's `memory.max` is the limit itself, so the workload
//! sees the same limit it would see under runc.
//!
//! vCPUs: `ceil(quota / period)` when a CFS quota is set (period 100 ms when
//! not given), else the default; at most the number of CPUs in `cpu.cpus`
//! when that is given; always 1 ..= [`MAX_CPUS`].

use agent_protocol::container::{shares_to_weight, Resources, MEMORY_UNLIMITED};

use crate::bundle::spec::LinuxResources;

/// Guest RAM on top of the container's memory limit (see the module docs).
pub const GUEST_OVERHEAD_MIB: u64 = 48;
/// Smallest guest: enough for the kernel and agent to boot comfortably.
pub const MIN_MEM_MIB: u64 = 128;
/// Largest guest hull sizes from a memory limit.
pub const MAX_MEM_MIB: u64 = 32 * 1024;
/// Most vCPUs (the VMM's MP table limit).
pub const MAX_CPUS: u32 = 32;
/// The CFS period the kernel uses when none is given.
pub const DEFAULT_CPU_PERIOD_US: u64 = 100_000;

const MIB: u64 = 1 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResourceError {
    #[error(
        "memory limit of {limit_bytes} bytes needs a {mem_mib} MiB guest; the most is {MAX_MEM_MIB} MiB"
    )]
    TooMuchMemory { limit_bytes: i64, mem_mib: u64 },
    #[error("cpu.cpus {0:?} is not a CPU list (like 0-3,7)")]
    BadCpuList(String),
    #[error("invalid memory size {0:?} (bytes, or a number with k, m, g or t)")]
    BadSize(String),
}

/// The VM size used when the spec sets no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmDefaults {
    pub mem_mib: u32,
    pub cpus: u32,
    /// Guest RAM added to a memory limit ([`GUEST_OVERHEAD_MIB`] unless
    /// configured otherwise).
    pub overhead_mib: u64,
}

/// Guest RAM (MiB) and vCPUs for a container with `resources`.
pub fn vm_size(
    resources: Option<&LinuxResources>,
    defaults: VmDefaults,
) -> Result<(u32, u32), ResourceError> {
    let limit = resources
        .and_then(|r| r.memory.as_ref())
        .and_then(|m| m.limit)
        .filter(|&l| l > 0);
    let mem_mib = match limit {
        None => u64::from(defaults.mem_mib),
        Some(limit_bytes) => {
            let limit_mib = limit_bytes.unsigned_abs().div_ceil(MIB);
            let mem_mib =
                (limit_mib + defaults.overhead_mib + limit_mib.div_ceil(64)).max(MIN_MEM_MIB);
            if mem_mib > MAX_MEM_MIB {
                return Err(ResourceError::TooMuchMemory {
                    limit_bytes,
                    mem_mib,
                });
            }
            mem_mib
        }
    };
    let cpu = resources.and_then(|r| r.cpu.as_ref());
    let quota = cpu.and_then(|c| c.quota).filter(|&q| q > 0);
    let period = cpu
        .and_then(|c| c.period)
        .filter(|&p| p > 0)
        .unwrap_or(DEFAULT_CPU_PERIOD_US);
    let mut cpus = match quota {
        Some(q) => q.unsigned_abs().div_ceil(period),
        None => u64::from(defaults.cpus),
    };
    if let Some(list) = cpu
        .and_then(|c| c.cpus.as_deref())
        .filter(|l| !l.trim().is_empty())
    {
        cpus = cpus.min(u64::from(cpu_list_len(list)?));
    }
    let cpus = cpus.clamp(1, u64::from(MAX_CPUS)) as u32;
    // mem_mib ≤ MAX_MEM_MIB or a u32 default: fits.
    Ok((u32::try_from(mem_mib).unwrap_or(u32::MAX), cpus))
}

/// How many CPUs a cpuset list (`0-3,7`) names.
pub fn cpu_list_len(list: &str) -> Result<u32, ResourceError> {
    let bad = || ResourceError::BadCpuList(list.to_string());
    let mut cpus = std::collections::BTreeSet::new();
    for part in list.trim().split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo, hi),
            None => (part, part),
        };
        let lo: u32 = lo.trim().parse().map_err(|_| bad())?;
        let hi: u32 = hi.trim().parse().map_err(|_| bad())?;
        if lo > hi || hi >= 8192 {
            return Err(bad());
        }
        cpus.extend(lo..=hi);
    }
    Ok(cpus.len() as u32)
}

/// What the agent applies to the container's guest cgroup, from the spec's
/// resources (or `hull update`'s, in the same form). runc's conventions:
/// a memory limit of -1 is no limit, 0 leaves it unset; a quota ≤ 0 is no
/// quota; shares become a cgroup v2 weight; a pids limit ≤ 0 is no limit.
pub fn agent_resources(resources: &LinuxResources) -> Resources {
    let memory_max = resources
        .memory
        .as_ref()
        .and_then(|m| m.limit)
        .and_then(|l| match l {
            0 => None,
            l if l < 0 => Some(MEMORY_UNLIMITED),
            l => Some(l.unsigned_abs()),
        });
    let cpu = resources.cpu.as_ref();
    let memory_low = resources
        .memory
        .as_ref()
        .and_then(|m| m.reservation)
        .filter(|&r| r > 0)
        .map(i64::unsigned_abs);
    Resources {
        memory_max,
        memory_low,
        cpu_quota: cpu.and_then(|c| c.quota).filter(|&q| q != 0),
        cpu_period: cpu.and_then(|c| c.period).filter(|&p| p != 0),
        cpu_weight: cpu
            .and_then(|c| c.shares)
            .map(shares_to_weight)
            .filter(|&w| w != 0),
        pids_max: resources.pids.as_ref().and_then(|p| p.limit),
    }
}

/// A memory size as `hull update --memory` takes it (like runc): bytes, or
/// a number with a `k`, `m`, `g` or `t` suffix (binary, optional `b`), or -1
/// for no limit.
pub fn parse_memory_size(text: &str) -> Result<i64, ResourceError> {
    let bad = || ResourceError::BadSize(text.to_string());
    let t = text.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, shift) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 10),
        Some((i, 'm')) => (&t[..i], 20),
        Some((i, 'g')) => (&t[..i], 30),
        Some((i, 't')) => (&t[..i], 40),
        _ => (t, 0),
    };
    let n: i64 = digits.trim().parse().map_err(|_| bad())?;
    if n < 0 {
        return Err(bad());
    }
    n.checked_mul(1 << shift).ok_or_else(bad)
}

#[cfg(test)]
mod tests;
