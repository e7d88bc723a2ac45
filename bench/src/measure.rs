//! Spawning a VMM, timing it from the outside, sampling its memory.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hull_e2e::Watchdog;
use vmm::clock::monotonic_ns;

/// The command line both VMMs boot with (hull-vmm's default plus `hull.hold`,
/// so the agent stays up after ready and the VMM can be sampled alive).
pub const CMDLINE: &str =
    "console=ttyS0 reboot=k panic=-1 quiet nomodule 8250.nr_uarts=1 no_timer_check tsc=reliable hull.hold";
const DEADLINE: Duration = Duration::from_secs(180);

#[derive(Debug, Clone)]
pub struct Options {
    pub runs: usize,
    pub mem_mib: u64,
    pub vmm: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub qemu: PathBuf,
}

fn env_or(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| default.into(), PathBuf::from)
}

impl Default for Options {
    fn default() -> Self {
        Self {
            runs: 5,
            mem_mib: 128,
            vmm: env_or("HULL_VMM", "target/release/hull-vmm"),
            kernel: env_or("HULL_KERNEL", "build/kernel/vmlinux"),
            initrd: env_or("HULL_INITRD", "build/initramfs.cpio"),
            qemu: "qemu-system-x86_64".into(),
        }
    }
}

/// One boot, in milliseconds from spawn, and memory in KiB.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Spawn → the agent's ready line read from the console.
    pub ready_ms: f64,
    /// Guest CLOCK_BOOTTIME at ready, from the ready line.
    pub guest_boot_ms: f64,
    /// hull only: spawn → first KVM_RUN, and first KVM_RUN → ready event.
    pub first_run_ms: Option<f64>,
    pub run_to_ready_ms: Option<f64>,
    /// Resident memory outside guest RAM (anon + file), and guest RAM (shmem).
    pub vmm_rss_kib: u64,
    pub guest_rss_kib: u64,
}

fn ms(from_ns: u64, to_ns: u64) -> f64 {
    to_ns.saturating_sub(from_ns) as f64 / 1e6
}

/// A `"key":number` field of a JSON line.
pub fn json_u64(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(&format!("\"{key}\":"))? + key.len() + 3..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("RssAnon:") + field("RssFile:"), field("RssShmem:"))
}

/// Reads the console until the ready line; returns (time seen, guest boot ms).
fn wait_ready(child: &mut Child) -> Result<(u64, f64)> {
    let out = child.stdout.take().context("stdout")?;
    for line in BufReader::new(out).lines() {
        let line = line?;
        if let Some(ready) = agent_protocol::parse_ready_line(&line) {
            return Ok((monotonic_ns(), ready.boottime_us as f64 / 1e3));
        }
    }
    bail!("the console closed before the agent was ready")
}

fn finish(mut child: Child, watchdog: Watchdog) -> String {
    let _ = child.kill();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let _ = child.wait();
    watchdog.disarm();
    err
}

fn spawn(cmd: &mut Command) -> Result<(u64, Child)> {
    let t0 = monotonic_ns();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {cmd:?}"))?;
    Ok((t0, child))
}

/// `hull-vmm` booting the options' kernel and initramfs, with `--timings`.
fn hull_vmm(o: &Options) -> Command {
    let mut cmd = Command::new(&o.vmm);
    cmd.arg("--kernel")
        .arg(&o.kernel)
        .arg("--initrd")
        .arg(&o.initrd);
    cmd.args(["--mem", &o.mem_mib.to_string(), "--timings"]);
    cmd
}

pub fn hull_boot(o: &Options) -> Result<Sample> {
    let (t0, mut child) = spawn(hull_vmm(o).args(["--cmdline", CMDLINE]))?;
    let done = Watchdog::arm(&child, DEADLINE);
    // hull-vmm's timing lines arrive on stderr, independently of the console:
    // wait for the agent_ready one before sampling and killing.
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stderr = child.stderr.take().context("stderr")?;
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let ready = wait_ready(&mut child);
    let mut log = String::new();
    let timing = lines.iter().find(|l| {
        log.push_str(l);
        log.push('\n');
        l.contains("\"event\":\"agent_ready\"")
    });
    finish(child, done);
    let (seen, guest_boot_ms) = ready.with_context(|| log.clone())?;
    let timing = timing.with_context(|| format!("no agent_ready timings line: {log}"))?;
    let first_run = json_u64(&timing, "first_kvm_run_ns").context("first_kvm_run_ns")?;
    let agent_ready = json_u64(&timing, "agent_ready_ns").context("agent_ready_ns")?;
    // hull-vmm splits its resident memory by guest RAM ranges itself (the
    // kernel and initramfs are file mappings inside guest RAM, which
    // /proc/PID/status would count as the VMM's).
    let vmm_rss_kib = json_u64(&timing, "vmm_rss_kib").context("vmm_rss_kib")?;
    let guest_rss_kib = json_u64(&timing, "guest_rss_kib").context("guest_rss_kib")?;
    Ok(Sample {
        ready_ms: ms(t0, seen),
        guest_boot_ms,
        first_run_ms: Some(ms(t0, first_run)),
        run_to_ready_ms: Some(ms(first_run, agent_ready)),
        vmm_rss_kib,
        guest_rss_kib,
    })
}

pub fn qemu_boot(o: &Options) -> Result<Sample> {
    let mem = format!("{}M", o.mem_mib);
    let (t0, mut child) = spawn(
        Command::new(&o.qemu)
            .args([
                "-M",
                "microvm,acpi=off,memory-backend=ram",
                "-enable-kvm",
                "-cpu",
                "host",
            ])
            .args(["-m", &mem, "-smp", "1", "-object"])
            .arg(format!("memory-backend-memfd,id=ram,size={mem}"))
            .args([
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-no-reboot",
            ])
            .args(["-serial", "stdio", "-kernel"])
            .arg(&o.kernel)
            .arg("-initrd")
            .arg(&o.initrd)
            .args(["-append", CMDLINE]),
    )?;
    let done = Watchdog::arm(&child, DEADLINE);
    let ready = wait_ready(&mut child);
    let (vmm_rss_kib, guest_rss_kib) = rss_kib(child.id());
    let err = finish(child, done);
    let (seen, guest_boot_ms) = ready.with_context(|| err.clone())?;
    Ok(Sample {
        ready_ms: ms(t0, seen),
        guest_boot_ms,
        vmm_rss_kib,
        guest_rss_kib,
        ..Default::default()
    })
}

/// Spawn → first KVM_RUN on the local /dev/kvm. The guest may fail later
/// (a paravirtual KVM cannot boot it); only the VMM's start is measured, and
/// the VMM is stopped as soon as it reports its first KVM_RUN.
pub fn native_first_run(o: &Options) -> Result<Sample> {
    let (t0, mut child) = spawn(hull_vmm(o).args(["--console", "none", "--timeout", "20"]))?;
    let done = Watchdog::arm(&child, DEADLINE);
    let stderr = child.stderr.take().context("stderr")?;
    let mut log = String::new();
    let line = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| {
            log.push_str(l);
            l.contains("\"event\":\"first_kvm_run\"")
        });
    finish(child, done);
    let line = line.with_context(|| format!("hull-vmm never reached KVM_RUN: {log}"))?;
    let first_run = json_u64(&line, "first_kvm_run_ns").context("first_kvm_run_ns")?;
    Ok(Sample {
        first_run_ms: Some(ms(t0, first_run)),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_fields() {
        let l = r#"{"event":"x","a_ns":12,"b_ns":null,"c":7}"#;
        assert_eq!(super::json_u64(l, "a_ns"), Some(12));
        assert_eq!(super::json_u64(l, "b_ns"), None);
        assert_eq!(super::json_u64(l, "c"), Some(7));
        assert_eq!(super::json_u64(l, "d"), None);
    }
}
