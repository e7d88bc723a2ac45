//! Process attributes applied in the container's child before exec:
//! `linux.personality`, `process.scheduler` (sched_setattr) and
//! `process.execCPUAffinity` (sched_setaffinity).

use oci_spec::runtime::{
    ExecCPUAffinity, Linux, LinuxPersonalityDomain, LinuxSchedulerFlag, LinuxSchedulerPolicy,
    Process, Scheduler,
};

use nix::sched::CpuSet;
use nix::sys::personality::Persona;
use nix::unistd::Pid;

use super::{check, checked, InitError, Result};

/// `struct sched_attr` (include/uapi/linux/sched/types.h), version 1.
#[repr(C)]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

const SCHED_ISO: u32 = 4;
const SCHED_DEADLINE: u32 = 6;

/// The kernel's `sched_attr` for the spec's scheduler.
pub fn sched_attr(s: &Scheduler) -> Result<SchedAttr> {
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => libc::SCHED_OTHER as u32,
        LinuxSchedulerPolicy::SchedFifo => libc::SCHED_FIFO as u32,
        LinuxSchedulerPolicy::SchedRr => libc::SCHED_RR as u32,
        LinuxSchedulerPolicy::SchedBatch => libc::SCHED_BATCH as u32,
        LinuxSchedulerPolicy::SchedIso => SCHED_ISO,
        LinuxSchedulerPolicy::SchedIdle => libc::SCHED_IDLE as u32,
        LinuxSchedulerPolicy::SchedDeadline => SCHED_DEADLINE,
    };
    let flags = s.flags().iter().flatten().fold(0u64, |f, flag| {
        f | match flag {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        }
    });
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(InitError::Msg(format!(
            "process.scheduler.nice {nice} is not in -20..=19"
        )));
    }
    let priority = u32::try_from(s.priority().unwrap_or(0))
        .map_err(|_| InitError::Msg("process.scheduler.priority must not be negative".into()))?;
    Ok(SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice,
        priority,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        util_min: 0,
        util_max: 0,
    })
}

/// A CPU list (`0-3,7`) as a CPU set.
pub fn cpu_set(field: &str, list: &str) -> Result<CpuSet> {
    let bad = || InitError::Msg(format!("{field} {list:?} is not a CPU list (like 0-3,7)"));
    let mut set = CpuSet::new();
    for part in list.trim().split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let lo: usize = lo.trim().parse().map_err(|_| bad())?;
        let hi: usize = hi.trim().parse().map_err(|_| bad())?;
        if lo > hi || hi >= CpuSet::count() {
            return Err(bad());
        }
        for cpu in lo..=hi {
            set.set(cpu).map_err(|_| bad())?;
        }
    }
    Ok(set)
}

/// Applies personality (the init's), scheduler and CPU affinity (an exec's:
/// the spec says it does not apply to the init) to this process.
pub fn apply(process: &Process, linux: Option<&Linux>, exec: bool) -> Result<()> {
    if let Some(p) = linux.and_then(|l| l.personality().as_ref()) {
        if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
            return Err(InitError::Msg(
                "linux.personality.flags: no flags are defined by the runtime spec".into(),
            ));
        }
        const PER_LINUX32: libc::c_int = 0x0008;
        let persona = match p.domain() {
            LinuxPersonalityDomain::PerLinux => Persona::empty(),
            LinuxPersonalityDomain::PerLinux32 => Persona::from_bits_retain(PER_LINUX32),
        };
        checked(nix::sys::personality::set(persona), || {
            "linux.personality".into()
        })?;
    }
    if let Some(s) = process.scheduler() {
        let attr = sched_attr(s)?;
        // SAFETY: a sched_attr whose size field is its own size, alive for the
        // call (nix has no sched_setattr).
        let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
        check(rc as libc::c_int, || "process.scheduler".into())?;
    }
    if let Some(a) = process.exec_cpu_affinity().as_ref().filter(|_| exec) {
        set_affinity(a)?;
    }
    Ok(())
}

fn set_affinity(a: &ExecCPUAffinity) -> Result<()> {
    let (field, list) = match (a.cpu_affinity_final().as_deref(), a.initial().as_deref()) {
        (Some(l), _) => ("process.execCPUAffinity.final", l),
        (None, Some(l)) => ("process.execCPUAffinity.initial", l),
        (None, None) => return Ok(()),
    };
    let set = cpu_set(field, list)?;
    checked(
        nix::sched::sched_setaffinity(Pid::from_raw(0), &set),
        || field.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_maps_to_sched_attr() {
        let s: Scheduler = serde_json::from_str(
            r#"{"policy": "SCHED_BATCH", "nice": 5, "flags": ["SCHED_RESET_ON_FORK"]}"#,
        )
        .unwrap();
        let a = sched_attr(&s).unwrap();
        assert_eq!(
            (a.policy, a.nice, a.flags),
            (libc::SCHED_BATCH as u32, 5, 1)
        );
        assert_eq!(a.size, 56);
        let bad: Scheduler =
            serde_json::from_str(r#"{"policy": "SCHED_OTHER", "nice": 40}"#).unwrap();
        assert!(sched_attr(&bad).is_err());
    }

    #[test]
    fn cpu_lists_parse() {
        let set = cpu_set("f", "0-2,5").unwrap();
        let on: Vec<usize> = (0..8).filter(|&c| set.is_set(c).unwrap()).collect();
        assert_eq!(on, [0, 1, 2, 5]);
        assert!(cpu_set("f", "3-1").is_err());
        assert!(cpu_set("f", "x")
            .unwrap_err()
            .to_string()
            .contains("f \"x\""));
    }
}
