//! One microVM's life: build it from a [`VmConfig`], run its vCPUs, wait for
//! the guest to power off (or fail), and tear everything down.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvm_bindings::{
    kvm_pit_config, kvm_userspace_memory_region, KVM_MAX_CPUID_ENTRIES, KVM_PIT_SPEAKER_DUMMY,
};
use kvm_ioctls::{Kvm, VmFd};
use vm_memory::{Address, GuestMemory, GuestMemoryMmap, GuestMemoryRegion};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::signal::Killable;

use crate::arch::{boot_info, cpuid, layout, mptable, regs};
use crate::boot;
use crate::clock::{monotonic_ns, rss_kib};
use crate::devices::bus::Bus;
use crate::devices::legacy::serial::{self, ConsoleOutput, SerialConsole};
use crate::devices::legacy::{event_port::EventPort, i8042::I8042};
use crate::devices::legacy::{I8042_PORT, SERIAL_IRQ, SERIAL_PORT};
use crate::devices::virtio::{
    fs::{Fs, FsConfig},
    mmio::MmioTransport,
    rng::Rng,
    vsock::Vsock,
    Interrupt, VirtioDevice,
};
use crate::memory;
use crate::vcpu::{self, Vcpu, VcpuError};

/// How long teardown waits for the console output to be written.
const CONSOLE_DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// The kernel command line used when the caller gives none.
pub const DEFAULT_CMDLINE: &str =
    "console=ttyS0 reboot=k panic=-1 quiet nomodule 8250.nr_uarts=1 no_timer_check tsc=reliable";

/// Where the serial console goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Console {
    Stdout,
    File(PathBuf),
    Discard,
}

/// What to boot and how.
#[derive(Debug, Clone)]
pub struct VmConfig {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    /// Base kernel command line; `None` means [`DEFAULT_CMDLINE`].
    pub cmdline: Option<String>,
    pub mem_mib: u64,
    pub cpus: u32,
    pub console: Console,
    /// Give up (and tear the VM down) after this long.
    pub timeout: Option<Duration>,
    /// Attach a virtio-rng device (entropy from the host).
    pub rng: bool,
    /// Attach a virtio-vsock device: guest CID and the host Unix socket path.
    pub vsock: Option<(u64, PathBuf)>,
    /// virtio-fs shares, one device each.
    pub fs: Vec<FsConfig>,
}

impl Default for VmConfig {
    fn default() -> Self {
        Self {
            kernel: PathBuf::new(),
            initrd: None,
            cmdline: None,
            mem_mib: 128,
            cpus: 1,
            console: Console::Stdout,
            timeout: None,
            rng: false,
            vsock: None,
            fs: Vec::new(),
        }
    }
}

/// Things that happen to a running VM, sent by vCPU threads and devices.
#[derive(Debug)]
pub enum VmEvent {
    /// A vCPU thread is about to enter KVM_RUN for the first time (CLOCK_MONOTONIC ns).
    VcpuStarted { ns: u64 },
    /// The agent reported ready on the event port.
    AgentReady,
    /// The agent asked for power-off on the event port (the clean end), or
    /// KVM reported a shutdown system event.
    PowerOff,
    /// The guest reset the machine (i8042 reset): a kernel panic with
    /// `panic=-1`, or a reboot nobody asked the agent for.
    Reset,
    /// A vCPU triple-faulted (KVM_EXIT_SHUTDOWN).
    TripleFault { cpu: u32 },
    /// A vCPU executed HLT with no in-kernel irqchip to wake it.
    Halted { cpu: u32 },
    /// KVM reported a guest crash system event.
    Crashed { cpu: u32 },
    /// A vCPU thread hit an error it cannot continue from.
    VcpuFailed(VcpuError),
}

/// A cloneable handle for sending [`VmEvent`]s to the VM's main loop.
#[derive(Clone)]
pub struct VmEvents(Sender<VmEvent>);

impl VmEvents {
    pub fn channel() -> (Self, Receiver<VmEvent>) {
        let (tx, rx) = mpsc::channel();
        (Self(tx), rx)
    }

    /// Sends an event; a VM that is already gone does not need it.
    pub fn send(&self, event: VmEvent) {
        let _ = self.0.send(event);
    }
}

/// How the guest ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestExit {
    PowerOff,
    Reset,
    TripleFault { cpu: u32 },
    Halted { cpu: u32 },
    Crashed { cpu: u32 },
}

impl GuestExit {
    /// Only an orderly power-off is a clean end.
    pub fn is_clean(&self) -> bool {
        *self == GuestExit::PowerOff
    }
}

impl std::fmt::Display for GuestExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PowerOff => write!(f, "guest powered off"),
            Self::Reset => write!(
                f,
                "guest reset the machine without powering off (kernel panic or unexpected reboot)"
            ),
            Self::TripleFault { cpu } => write!(f, "guest triple-faulted on vCPU {cpu}"),
            Self::Halted { cpu } => write!(f, "guest halted vCPU {cpu} with nothing to wake it"),
            Self::Crashed { cpu } => write!(f, "guest reported a crash on vCPU {cpu}"),
        }
    }
}

/// CLOCK_MONOTONIC timestamps (ns) of one run, and the VMM's memory.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    pub vmm_start_ns: u64,
    pub first_kvm_run_ns: Option<u64>,
    pub agent_ready_ns: Option<u64>,
    pub end_ns: u64,
    /// VMM resident memory excluding guest RAM (anon + file), in KiB, sampled
    /// when the agent was ready (or at the end when it never was).
    pub vmm_rss_kib: u64,
    /// Guest RAM pages resident (the memfd), in KiB, at the same moment.
    pub guest_rss_kib: u64,
}

/// Moments of a run, reported to an observer as they happen.
#[derive(Debug, Clone, Copy)]
pub enum Milestone<'a> {
    FirstKvmRun(&'a Timings),
    AgentReady(&'a Timings),
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub exit: GuestExit,
    pub timings: Timings,
    pub cmdline: String,
}

/// Everything that stops a VM from being built or run.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("cannot open /dev/kvm: {0}")]
    OpenKvm(kvm_ioctls::Error),
    #[error("KVM API version {0} is not supported (need 12)")]
    ApiVersion(i32),
    #[error("KVM_CREATE_VM failed: {0}")]
    CreateVm(kvm_ioctls::Error),
    #[error("KVM_SET_TSS_ADDR failed: {0}")]
    SetTss(kvm_ioctls::Error),
    #[error("KVM_CREATE_IRQCHIP failed: {0}")]
    CreateIrqchip(kvm_ioctls::Error),
    #[error("KVM_CREATE_PIT2 failed: {0}")]
    CreatePit(kvm_ioctls::Error),
    #[error("KVM_SET_USER_MEMORY_REGION failed for slot {slot}: {source}")]
    SetMemory {
        slot: u32,
        source: kvm_ioctls::Error,
    },
    #[error("KVM_IRQFD failed for GSI {gsi}: {source}")]
    Irqfd { gsi: u32, source: kvm_ioctls::Error },
    #[error("KVM_GET_SUPPORTED_CPUID failed: {0}")]
    SupportedCpuid(kvm_ioctls::Error),
    #[error("KVM_CREATE_VCPU failed for vCPU {cpu}: {source}")]
    CreateVcpu { cpu: u32, source: kvm_ioctls::Error },
    #[error("KVM_SET_CPUID2 failed for vCPU {cpu}: {source}")]
    SetCpuid { cpu: u32, source: kvm_ioctls::Error },
    #[error("setting up vCPU {cpu}: {source}")]
    VcpuSetup { cpu: u32, source: regs::RegsError },
    #[error("cannot create eventfd: {0}")]
    EventFd(std::io::Error),
    #[error("cannot open console output {path}: {source}")]
    Console {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot install the vCPU kick signal handler: {0}")]
    Signal(std::io::Error),
    #[error("cannot start a vCPU thread: {0}")]
    Thread(std::io::Error),
    #[error("guest memory: {0}")]
    Memory(#[from] memory::MemoryError),
    #[error("{0}")]
    Boot(#[from] boot::BootError),
    #[error("{0}")]
    BootInfo(#[from] boot_info::BootInfoError),
    #[error("{0}")]
    Mptable(#[from] mptable::MptableError),
    #[error("{0}")]
    Regs(#[from] regs::RegsError),
    #[error("bus: {0}")]
    Bus(#[from] crate::devices::bus::BusError),
    #[error("{0}")]
    Vcpu(VcpuError),
    #[error("{0} virtio devices do not fit the IRQs left")]
    TooManyDevices(usize),
    #[error("virtio device: {0}")]
    Virtio(String),
    #[error("every source of VM events is gone (all vCPU threads ended without a reason)")]
    EventsClosed,
    #[error("the guest did not finish within {after:?} (stopped at: {where_})")]
    Timeout { after: Duration, where_: String },
}

/// A built VM, ready to run.
pub struct Vm {
    config: VmConfig,
    /// Kept alive for as long as the VM runs: KVM holds its fd and mappings.
    _kvm_vm: VmFd,
    _mem: GuestMemoryMmap,
    vcpus: Vec<Vcpu>,
    serial: Arc<Mutex<SerialConsole>>,
    console: ConsoleOutput,
    /// Host address ranges of guest RAM, to tell guest pages from the VMM's.
    guest_ranges: Vec<(u64, u64)>,
    events: Receiver<VmEvent>,
    stop: Arc<AtomicBool>,
    vmm_start_ns: u64,
    cmdline: String,
}

fn console_output(console: &Console) -> Result<Box<dyn Write + Send>, VmError> {
    Ok(match console {
        Console::Stdout => Box::new(std::io::stdout()),
        Console::Discard => Box::new(std::io::sink()),
        Console::File(path) => Box::new(std::io::LineWriter::new(File::create(path).map_err(
            |source| VmError::Console {
                path: path.clone(),
                source,
            },
        )?)),
    })
}

impl Vm {
    /// Creates the VM: KVM objects, memory, devices, boot payload, vCPUs.
    pub fn new(config: VmConfig) -> Result<Self, VmError> {
        let vmm_start_ns = monotonic_ns();
        if config.cpus == 0 || config.cpus > mptable::MAX_CPUS {
            return Err(mptable::MptableError::CpuCount(config.cpus).into());
        }
        let kvm = Kvm::new().map_err(VmError::OpenKvm)?;
        let api = kvm.get_api_version();
        if api != 12 {
            return Err(VmError::ApiVersion(api));
        }
        let vm = kvm.create_vm().map_err(VmError::CreateVm)?;
        let (mem, _memfd) = memory::create(config.mem_mib)?;
        for (slot, region) in mem.iter().enumerate() {
            let slot = slot as u32;
            let region_desc = kvm_userspace_memory_region {
                slot,
                guest_phys_addr: region.start_addr().raw_value(),
                memory_size: region.len(),
                userspace_addr: region.as_ptr() as u64,
                flags: 0,
            };
            // SAFETY: the region is a live mapping owned by `mem`. The Vm keeps
            // both until it is dropped; if `new` fails, `mem` may be unmapped
            // before the VM fd is closed, but no vCPU has run, so nothing
            // accesses the slot in between.
            unsafe { vm.set_user_memory_region(region_desc) }
                .map_err(|source| VmError::SetMemory { slot, source })?;
        }
        vm.set_tss_address(layout::KVM_TSS_ADDR)
            .map_err(VmError::SetTss)?;
        vm.create_irq_chip().map_err(VmError::CreateIrqchip)?;
        let pit = kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        vm.create_pit2(pit).map_err(VmError::CreatePit)?;

        let (events_tx, events) = VmEvents::channel();
        let serial_irq = EventFd::new(libc::EFD_NONBLOCK).map_err(VmError::EventFd)?;
        vm.register_irqfd(&serial_irq, SERIAL_IRQ)
            .map_err(|source| VmError::Irqfd {
                gsi: SERIAL_IRQ,
                source,
            })?;
        let (console_writer, console) =
            serial::console(console_output(&config.console)?).map_err(VmError::Thread)?;
        let serial = Arc::new(Mutex::new(SerialConsole::new(serial_irq, console_writer)));
        let mut io_bus = Bus::new();
        io_bus.insert(serial.clone(), SERIAL_PORT.0, SERIAL_PORT.1)?;
        io_bus.insert(
            Arc::new(Mutex::new(I8042::new(events_tx.clone()))),
            I8042_PORT.0,
            I8042_PORT.1,
        )?;
        io_bus.insert(
            Arc::new(Mutex::new(EventPort::new(events_tx.clone()))),
            u64::from(agent_protocol::EVENT_PORT),
            1,
        )?;
        let mut mmio_bus = Bus::new();
        let mut devices: Vec<Arc<Mutex<dyn VirtioDevice>>> = Vec::new();
        if config.rng {
            devices.push(Arc::new(Mutex::new(Rng::new())));
        }
        if let Some((cid, uds)) = &config.vsock {
            let vsock =
                Vsock::new(*cid, uds.clone()).map_err(|e| VmError::Virtio(e.to_string()))?;
            devices.push(Arc::new(Mutex::new(vsock)));
        }
        if !config.fs.is_empty() {
            crate::devices::virtio::fs::limits::raise_fd_limit();
        }
        for share in &config.fs {
            let fs = Fs::new(share.clone()).map_err(|e| VmError::Virtio(e.to_string()))?;
            devices.push(Arc::new(Mutex::new(fs)));
        }
        let device_args = attach_virtio(&vm, &mem, &mut mmio_bus, devices)?;

        let kernel = boot::load_kernel(&mem, &config.kernel)?;
        let initrd = match &config.initrd {
            Some(path) => Some(boot::load_initrd(&mem, path, kernel.end)?),
            None => None,
        };
        let base = config.cmdline.as_deref().unwrap_or(DEFAULT_CMDLINE);
        let cmdline = boot::write_cmdline(&mem, &[&compose_cmdline(base, &device_args)])?;
        boot_info::write(&mem, config.mem_mib << 20, initrd)?;
        mptable::write(&mem, config.cpus)?;
        regs::write_gdt(&mem)?;

        let supported = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(VmError::SupportedCpuid)?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut vcpus = Vec::with_capacity(config.cpus as usize);
        for cpu in 0..config.cpus {
            let fd = vm
                .create_vcpu(u64::from(cpu))
                .map_err(|source| VmError::CreateVcpu { cpu, source })?;
            let mut cpuid = supported.clone();
            cpuid::fixup(cpuid.as_mut_slice(), cpu, config.cpus);
            fd.set_cpuid2(&cpuid)
                .map_err(|source| VmError::SetCpuid { cpu, source })?;
            let setup = |fd: &kvm_ioctls::VcpuFd| -> Result<(), regs::RegsError> {
                regs::setup_msrs(fd)?;
                regs::setup_fpu(fd)?;
                regs::setup_lapic(fd)?;
                if cpu == 0 {
                    regs::setup_regs(fd, kernel.entry)?;
                    regs::setup_sregs(fd)?;
                }
                Ok(())
            };
            setup(&fd).map_err(|source| VmError::VcpuSetup { cpu, source })?;
            vcpus.push(Vcpu {
                id: cpu,
                fd,
                io_bus: io_bus.clone(),
                mmio_bus: mmio_bus.clone(),
                events: events_tx.clone(),
                stop: stop.clone(),
            });
        }
        let guest_ranges = mem.iter().map(|r| (r.as_ptr() as u64, r.len())).collect();
        Ok(Self {
            config,
            console,
            guest_ranges,
            _kvm_vm: vm,
            _mem: mem,
            vcpus,
            serial,
            events,
            stop,
            vmm_start_ns,
            cmdline,
        })
    }

    /// Runs the guest to its end, then stops every vCPU and flushes the console.
    pub fn run(self) -> Result<RunReport, VmError> {
        self.run_observed(&mut |_| {})
    }

    /// Like [`Vm::run`], calling `observe` at each [`Milestone`] as it happens.
    pub fn run_observed(
        mut self,
        observe: &mut dyn FnMut(Milestone<'_>),
    ) -> Result<RunReport, VmError> {
        vcpu::install_kick_handler().map_err(VmError::Signal)?;
        let mut threads: Vec<JoinHandle<Option<u64>>> = Vec::with_capacity(self.vcpus.len());
        for v in self.vcpus.drain(..) {
            let spawned = std::thread::Builder::new()
                .name(format!("vcpu{}", v.id))
                .spawn(move || v.run());
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => {
                    let _ = stop_vcpus(&self.stop, threads);
                    return Err(VmError::Thread(e));
                }
            }
        }
        let mut timings = Timings {
            vmm_start_ns: self.vmm_start_ns,
            ..Default::default()
        };
        let outcome = self.wait(&mut timings, observe);
        let rips = stop_vcpus(&self.stop, threads);
        let outcome = outcome.map_err(|e| match e {
            VmError::Timeout { after, .. } => VmError::Timeout {
                after,
                where_: describe(&rips),
            },
            other => other,
        });
        self.serial
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .finish();
        self.console.wait(CONSOLE_DRAIN_LIMIT);
        timings.end_ns = monotonic_ns();
        if timings.agent_ready_ns.is_none() {
            (timings.vmm_rss_kib, timings.guest_rss_kib) = rss_kib(&self.guest_ranges);
        }
        outcome.map(|exit| RunReport {
            exit,
            timings,
            cmdline: self.cmdline.clone(),
        })
    }

    fn wait(
        &self,
        timings: &mut Timings,
        observe: &mut dyn FnMut(Milestone<'_>),
    ) -> Result<GuestExit, VmError> {
        let deadline = self
            .config
            .timeout
            .and_then(|t| Instant::now().checked_add(t));
        loop {
            let event = match deadline {
                None => self
                    .events
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
                Some(d) => self
                    .events
                    .recv_timeout(d.saturating_duration_since(Instant::now())),
            };
            let event = match event {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => {
                    let after = self.config.timeout.unwrap_or_default();
                    return Err(VmError::Timeout {
                        after,
                        where_: String::new(),
                    });
                }
                Err(RecvTimeoutError::Disconnected) => return Err(VmError::EventsClosed),
            };
            return Ok(match event {
                VmEvent::VcpuStarted { ns } => {
                    if timings.first_kvm_run_ns.is_none() {
                        timings.first_kvm_run_ns = Some(ns);
                        observe(Milestone::FirstKvmRun(timings));
                    }
                    continue;
                }
                VmEvent::AgentReady => {
                    if timings.agent_ready_ns.is_none() {
                        timings.agent_ready_ns = Some(monotonic_ns());
                        (timings.vmm_rss_kib, timings.guest_rss_kib) = rss_kib(&self.guest_ranges);
                        observe(Milestone::AgentReady(timings));
                    }
                    continue;
                }
                VmEvent::PowerOff => GuestExit::PowerOff,
                VmEvent::Reset => GuestExit::Reset,
                VmEvent::TripleFault { cpu } => GuestExit::TripleFault { cpu },
                VmEvent::Halted { cpu } => GuestExit::Halted { cpu },
                VmEvent::Crashed { cpu } => GuestExit::Crashed { cpu },
                VmEvent::VcpuFailed(e) => return Err(VmError::Vcpu(e)),
            });
        }
    }
}

/// The command line: the base's kernel parameters, then the device
/// declarations, then whatever the base passes to init after `--`.
pub fn compose_cmdline(base: &str, device_args: &[String]) -> String {
    let padded = format!(" {} ", base.trim());
    let (kernel, init) = match padded.split_once(" -- ") {
        Some((k, i)) => (k.trim(), Some(i.trim())),
        None => (padded.trim(), None),
    };
    let mut out: Vec<&str> = vec![kernel];
    out.extend(device_args.iter().map(String::as_str));
    if let Some(init) = init {
        out.push("--");
        out.push(init);
    }
    out.retain(|p| !p.is_empty());
    out.join(" ")
}

/// Puts each virtio device behind a virtio-mmio window with its own IRQ
/// (an irqfd), and returns the `virtio_mmio.device=` arguments declaring them.
fn attach_virtio(
    vm: &VmFd,
    mem: &GuestMemoryMmap,
    mmio_bus: &mut Bus,
    devices: Vec<Arc<Mutex<dyn VirtioDevice>>>,
) -> Result<Vec<String>, VmError> {
    let mut args = Vec::new();
    for (i, device) in devices.into_iter().enumerate() {
        let gsi = layout::VIRTIO_IRQ_BASE + i as u32;
        if gsi > layout::IRQ_MAX {
            return Err(VmError::TooManyDevices(i + 1));
        }
        let base = layout::VIRTIO_MMIO_BASE + i as u64 * layout::VIRTIO_MMIO_SIZE;
        let interrupt = Arc::new(Interrupt::new().map_err(VmError::EventFd)?);
        vm.register_irqfd(interrupt.eventfd(), gsi)
            .map_err(|source| VmError::Irqfd { gsi, source })?;
        let transport = MmioTransport::new(mem.clone(), device, interrupt)
            .map_err(|e| VmError::Virtio(e.to_string()))?;
        mmio_bus.insert(
            Arc::new(Mutex::new(transport)),
            base,
            layout::VIRTIO_MMIO_SIZE,
        )?;
        args.push(format!("virtio_mmio.device=4K@{base:#x}:{gsi}"));
    }
    Ok(args)
}

/// Sets the stop flag, kicks every vCPU thread out of KVM_RUN, joins them;
/// returns each vCPU's last RIP.
fn stop_vcpus(stop: &AtomicBool, threads: Vec<JoinHandle<Option<u64>>>) -> Vec<Option<u64>> {
    stop.store(true, Ordering::Release);
    for t in &threads {
        // A thread that already ended has nothing to kick.
        let _ = t.kill(vcpu::kick_signal());
    }
    threads
        .into_iter()
        .map(|t| t.join().ok().flatten())
        .collect()
}

/// "vCPU 0 rip 0xffffffff81000000, vCPU 1 rip ?"
fn describe(rips: &[Option<u64>]) -> String {
    let one = |(cpu, rip): (usize, &Option<u64>)| match rip {
        Some(rip) => format!("vCPU {cpu} rip {rip:#x}"),
        None => format!("vCPU {cpu} rip ?"),
    };
    rips.iter()
        .enumerate()
        .map(one)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_declarations_go_before_init_arguments() {
        let dev = vec!["virtio_mmio.device=4K@0xd0000000:5".to_string()];
        assert_eq!(
            compose_cmdline("quiet", &dev),
            "quiet virtio_mmio.device=4K@0xd0000000:5"
        );
        assert_eq!(
            compose_cmdline("quiet -- foo bar", &dev),
            "quiet virtio_mmio.device=4K@0xd0000000:5 -- foo bar"
        );
        assert_eq!(
            compose_cmdline("-- x", &dev),
            "virtio_mmio.device=4K@0xd0000000:5 -- x"
        );
        assert_eq!(compose_cmdline(" a  ", &[]), "a");
    }
}
