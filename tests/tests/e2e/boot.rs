//! Boots real microVMs with hull-vmm and checks how they end.

use hull_e2e::{boot_args, hull_vmm, hull_vmm_owned, initrd, kernel, Run, Scratch};

fn assert_booted(run: &Run, cpus: u32, mem_mib: u64) {
    assert!(!run.timed_out, "hull-vmm hung: {run:?}");
    let ready = run
        .ready()
        .unwrap_or_else(|| panic!("agent never reported ready: {run:?}"));
    assert_eq!(run.code(), Some(0), "power-off must exit 0: {run:?}");
    assert_eq!(ready.cpus, cpus, "guest sees the wrong CPU count: {run:?}");
    let mem_kib = mem_mib * 1024;
    // MemTotal is RAM minus what the kernel reserves for itself at boot.
    assert!(
        ready.mem_total_kib <= mem_kib && ready.mem_total_kib > mem_kib * 3 / 4,
        "guest MemTotal {} KiB for {mem_mib} MiB: {run:?}",
        ready.mem_total_kib
    );
    assert!(ready.boottime_us > 0);
}

fn boot(cpus: u32, mem_mib: u64) {
    let run = hull_vmm_owned(&boot_args(cpus, mem_mib));
    assert_booted(&run, cpus, mem_mib);
    let ready = run.ready().expect("ready");
    assert!(
        ready.virtio.is_empty() && ready.hwrng_bytes == 0,
        "no devices were attached: {run:?}"
    );
}

#[test]
fn boots_1_vcpu_128_mib() {
    boot(1, 128);
}

#[test]
fn boots_2_vcpus_512_mib() {
    boot(2, 512);
}

#[test]
fn boots_2_vcpus_128_mib() {
    boot(2, 128);
}

#[test]
fn boots_1_vcpu_512_mib() {
    boot(1, 512);
}

#[test]
fn virtio_rng_serves_the_guest_over_virtio_mmio() {
    let mut args = boot_args(2, 128);
    args.push("--rng".into());
    let run = hull_vmm_owned(&args);
    assert_booted(&run, 2, 128);
    let ready = run.ready().expect("ready");
    // A bound driver means the virtio-mmio probe, feature negotiation and
    // queue set-up worked; bytes read from /dev/hwrng mean requests went
    // through the queue and the used-buffer interrupt came back.
    assert_eq!(ready.virtio, vec![4], "virtio-rng not bound: {run:?}");
    assert_eq!(
        ready.hwrng_bytes, 16,
        "no entropy through the queue: {run:?}"
    );
}

#[test]
fn power_off_is_clean_and_timed() {
    let mut args = boot_args(1, 128);
    args.push("--timings".into());
    let run = hull_vmm_owned(&args);
    assert_booted(&run, 1, 128);
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("\"event\":\"exit\""))
        .expect("timings line");
    assert!(line.contains("\"exit\":\"PowerOff\""), "{line}");
    assert!(
        !line.contains("null"),
        "every boot phase must be timed: {line}"
    );
}

/// Boots with a command line whose init does not exist: the kernel panics.
fn panic_run(reboot: &str) -> Run {
    let cmdline = format!("console=ttyS0 reboot={reboot} panic=-1 rdinit=/does-not-exist");
    let mut args = boot_args(1, 128);
    args.extend(["--cmdline".into(), cmdline]);
    hull_vmm_owned(&args)
}

#[test]
fn kernel_panic_is_an_error_not_a_hang() {
    let run = panic_run("k");
    assert!(!run.timed_out, "{run:?}");
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(
        run.stdout.contains("Kernel panic"),
        "console should show the panic: {run:?}"
    );
    assert!(run.stderr.contains("kernel panic"), "{run:?}");
    assert!(run.ready().is_none());
}

#[test]
fn triple_fault_is_an_error_not_a_hang() {
    let run = panic_run("t");
    assert!(!run.timed_out, "{run:?}");
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("triple-faulted"), "{run:?}");
}

#[test]
fn hung_guest_hits_the_timeout() {
    // panic=0: the kernel spins forever after panicking; only --timeout ends it.
    let mut args = boot_args(1, 128);
    let n = args.len();
    args[n - 1] = "30".into();
    args.extend([
        "--cmdline".into(),
        "console=ttyS0 panic=0 rdinit=/does-not-exist".into(),
    ]);
    let run = hull_vmm_owned(&args);
    assert!(
        !run.timed_out,
        "hull-vmm's own timeout must fire first: {run:?}"
    );
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("did not finish within 30s (stopped at: vCPU 0 rip 0xffffffff"),
        "{run:?}"
    );
}

#[test]
fn corrupt_initramfs_is_an_error() {
    let scratch = Scratch::new("corrupt-initrd");
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let bad = scratch.file("bad.cpio", &garbage);
    // The console goes to a file here, which this test also checks.
    let console = scratch.0.join("console.log");
    let run = hull_vmm(&[
        "--kernel",
        &kernel().display().to_string(),
        "--initrd",
        &bad.display().to_string(),
        "--console",
        &console.display().to_string(),
        "--timeout",
        "200",
    ]);
    assert!(!run.timed_out, "{run:?}");
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("without powering off"), "{run:?}");
    assert!(
        run.stdout.is_empty(),
        "the console must go to the file: {run:?}"
    );
    let log = std::fs::read_to_string(&console).unwrap_or_default();
    assert!(log.contains("Kernel panic"), "console file: {log:?}");
    assert!(!log.contains("hull-agent: ready"), "{log:?}");
}

fn expect_error(args: &[&str], message: &str) {
    let run = hull_vmm(args);
    assert!(!run.timed_out, "{run:?}");
    assert_ne!(run.code(), Some(0), "{run:?}");
    assert!(
        run.stderr.contains(message),
        "expected {message:?} in: {run:?}"
    );
}

#[test]
fn missing_or_corrupt_kernel_is_a_clear_error() {
    let initrd = initrd().display().to_string();
    expect_error(
        &["--kernel", "/nonexistent/vmlinux", "--initrd", &initrd],
        "cannot open kernel /nonexistent/vmlinux",
    );
    let scratch = Scratch::new("corrupt-kernel");
    let junk = scratch.file("vmlinux", b"this is not an ELF file at all, just text");
    let junk = junk.display().to_string();
    expect_error(
        &["--kernel", &junk, "--initrd", &initrd],
        "must be an uncompressed ELF vmlinux",
    );
    // A valid ELF that is not a PVH kernel.
    let not_pvh = std::env::current_exe()
        .expect("own path")
        .display()
        .to_string();
    expect_error(
        &["--kernel", &not_pvh, "--initrd", &initrd],
        "no PVH entry note",
    );
}

#[test]
fn missing_or_empty_initramfs_is_a_clear_error() {
    let kernel = kernel().display().to_string();
    expect_error(
        &["--kernel", &kernel, "--initrd", "/nonexistent.cpio"],
        "cannot open initramfs /nonexistent.cpio",
    );
    let scratch = Scratch::new("empty-initrd");
    let empty = scratch.file("empty.cpio", b"").display().to_string();
    expect_error(&["--kernel", &kernel, "--initrd", &empty], "is empty");
}

#[test]
fn bad_arguments_are_rejected() {
    let kernel = kernel().display().to_string();
    expect_error(&["--kernel", &kernel, "--cpus", "0"], "0 vCPUs requested");
    expect_error(&["--kernel", &kernel, "--mem", "1"], "out of range");
    // Usage errors are clap's: exit 2, naming the missing flag.
    let run = hull_vmm(&["--initrd", "x"]);
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert!(run.stderr.contains("--kernel"), "{run:?}");
    let run = hull_vmm(&["--kernel", &kernel, "--bogus"]);
    assert_eq!(run.code(), Some(2), "{run:?}");
}
