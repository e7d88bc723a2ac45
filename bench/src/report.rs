//! Medians and ratios.

use crate::measure::{Options, Sample};

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn med(samples: &[Sample], f: impl Fn(&Sample) -> Option<f64>) -> f64 {
    median(samples.iter().filter_map(f).collect())
}

pub fn boot(o: &Options, hull: &[Sample], qemu: &[Sample]) {
    let h_ready = med(hull, |s| Some(s.ready_ms));
    let q_ready = med(qemu, |s| Some(s.ready_ms));
    println!(
        "boot benchmark: {} runs each, {} MiB, 1 vCPU, medians",
        o.runs, o.mem_mib
    );
    println!(
        "  hull-vmm  spawn -> first KVM_RUN          {:9.1} ms",
        med(hull, |s| s.first_run_ms)
    );
    println!(
        "  hull-vmm  first KVM_RUN -> agent ready     {:9.1} ms",
        med(hull, |s| s.run_to_ready_ms)
    );
    println!(
        "  hull-vmm  spawn -> ready line (total)      {:9.1} ms",
        h_ready
    );
    println!(
        "  qemu      spawn -> ready line (total)      {:9.1} ms",
        q_ready
    );
    println!(
        "  guest clock at ready: hull {:.1} ms, qemu {:.1} ms",
        med(hull, |s| Some(s.guest_boot_ms)),
        med(qemu, |s| Some(s.guest_boot_ms))
    );
    println!(
        "  VMM RSS outside guest RAM: hull {:.0} KiB, qemu {:.0} KiB",
        med(hull, |s| Some(s.vmm_rss_kib as f64)),
        med(qemu, |s| Some(s.vmm_rss_kib as f64))
    );
    println!(
        "  guest RAM resident:        hull {:.0} KiB, qemu {:.0} KiB",
        med(hull, |s| Some(s.guest_rss_kib as f64)),
        med(qemu, |s| Some(s.guest_rss_kib as f64))
    );
    println!(
        "  ratio hull/qemu, total boot to ready: {:.2}",
        h_ready / q_ready
    );
}

pub fn native(o: &Options, samples: &[Sample]) {
    let v: Vec<f64> = samples.iter().filter_map(|s| s.first_run_ms).collect();
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "native: hull-vmm spawn -> first KVM_RUN on the local /dev/kvm, {} runs, {} MiB",
        o.runs, o.mem_mib
    );
    println!("  median {:.2} ms, min {:.2} ms", median(v), min);
}
