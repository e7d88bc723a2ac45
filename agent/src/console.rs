//! Logging to the console (the kernel gave PID 1 /dev/console as stdio).

use std::io::Write;

/// Writes one line to stdout; a console that refuses it is not worth dying for.
pub fn log(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// Microseconds since the guest booted (CLOCK_BOOTTIME).
pub fn boottime_us() -> u64 {
    let Ok(ts) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME) else {
        return 0;
    };
    (ts.tv_sec() as u64) * 1_000_000 + (ts.tv_nsec() as u64) / 1_000
}

/// What the ready line reports: boot time, online CPUs, MemTotal.
pub fn ready_report() -> agent_protocol::Ready {
    let cpus = nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
        .ok()
        .flatten()
        .unwrap_or(0);
    let mem_total_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0);
    let hwrng_bytes = crate::virtio::hwrng_bytes();
    agent_protocol::Ready {
        boottime_us: boottime_us(),
        cpus: u32::try_from(cpus).unwrap_or(0),
        mem_total_kib,
        virtio: crate::virtio::bound_devices(),
        hwrng_bytes,
    }
}
