//! Timestamps on CLOCK_MONOTONIC in nanoseconds, comparable across processes
//! (a benchmark harness subtracts its own reading taken before spawning us).

/// Nanoseconds on CLOCK_MONOTONIC.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// The process's resident memory split as /proc/self/status reports it, in KiB:
/// (anonymous + file-backed, shared memory). Guest RAM is a shared memfd, so it
/// is counted in the second figure only.
pub fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("RssAnon:") + field("RssFile:"), field("RssShmem:"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn clock_moves_forward_and_rss_is_read() {
        let a = super::monotonic_ns();
        let b = super::monotonic_ns();
        assert!(b >= a && a > 0);
        assert!(super::rss_kib().0 > 0);
    }
}
