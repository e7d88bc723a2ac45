//! Timestamps on CLOCK_MONOTONIC in nanoseconds, comparable across processes
//! (a benchmark harness subtracts its own reading taken before spawning us).

pub use vmm_control::monotonic_ns;

/// Resident memory in KiB, split into (the VMM's own, guest RAM): every
/// mapping in /proc/self/smaps that lies inside one of `guest_ranges` (host
/// address, length) counts as guest RAM, everything else as the VMM's.
pub fn rss_kib(guest_ranges: &[(u64, u64)]) -> (u64, u64) {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let (mut vmm, mut guest) = (0u64, 0u64);
    let mut in_guest = false;
    for line in smaps.lines() {
        if let Some(range) = line.split_whitespace().next().filter(|t| t.contains('-')) {
            let mut ends = range.split('-').map(|v| u64::from_str_radix(v, 16));
            if let (Some(Ok(start)), Some(Ok(end))) = (ends.next(), ends.next()) {
                in_guest = guest_ranges
                    .iter()
                    .any(|&(base, len)| start >= base && end <= base.saturating_add(len));
                continue;
            }
        }
        if let Some(kib) = line
            .strip_prefix("Rss:")
            .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        {
            if in_guest {
                guest += kib;
            } else {
                vmm += kib;
            }
        }
    }
    (vmm, guest)
}

#[cfg(test)]
mod tests {
    #[test]
    fn clock_moves_forward_and_rss_is_read() {
        let a = super::monotonic_ns();
        let b = super::monotonic_ns();
        assert!(b >= a && a > 0);
        assert!(super::rss_kib(&[]).0 > 0);
    }

    #[test]
    fn touched_guest_ram_is_counted_as_guest() {
        use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryRegion};
        let (mem, _fd) = crate::memory::create(32).unwrap();
        for page in 0..256u64 {
            mem.write_obj(1u8, GuestAddress(page * 4096)).unwrap();
        }
        let ranges: Vec<(u64, u64)> = mem.iter().map(|r| (r.as_ptr() as u64, r.len())).collect();
        let (vmm, guest) = super::rss_kib(&ranges);
        assert!(guest >= 1024, "1 MiB touched, {guest} KiB counted");
        assert!(vmm > 0);
    }
}
