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
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

/// What the ready line reports: boot time, online CPUs, MemTotal.
pub fn ready_report() -> agent_protocol::Ready {
    // SAFETY: sysconf has no memory-safety preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
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
