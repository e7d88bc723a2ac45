//! One microVM's life: build it from a [`VmConfig`] (here), run its vCPUs,
//! wait for the guest to power off (or fail) while serving control
//! requests, and tear everything down ([`run`]).

mod exit;
mod run;

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kvm_bindings::{
    kvm_pit_config, kvm_userspace_memory_region, KVM_MAX_CPUID_ENTRIES, KVM_PIT_SPEAKER_DUMMY,
};
use kvm_ioctls::{Kvm, VmFd};
use vm_memory::{Address, GuestMemory, GuestMemoryMmap, GuestMemoryRegion};
use vmm_sys_util::eventfd::EventFd;

use crate::arch::{boot_info, cpuid, layout, mptable, regs};
use crate::boot;
use crate::clock::monotonic_ns;
use crate::control::ControlSender;
use crate::devices::bus::Bus;
use crate::devices::legacy::serial::{self, ConsoleOutput, SerialConsole};
use crate::devices::legacy::{event_port::EventPort, i8042::I8042};
use crate::devices::legacy::{I8042_PORT, SERIAL_IRQ, SERIAL_PORT};
use crate::devices::virtio::{
    fs::{Fs, FsConfig},
    mmio::{MmioTransport, QUEUE_NOTIFY_OFFSET},
    net::{Net, NetConfig},
    notify::{IoEventRegistry, KvmIoEvents, NotifyBinding},
    rng::Rng,
    vsock::Vsock,
    Interrupt, VirtioDevice,
};
use crate::event::{DeviceFailures, VmEvent, VmEvents};
use crate::memory;
use crate::vcpu::gate::VcpuGate;
use crate::vcpu::{Vcpu, VcpuError};

pub use exit::{GuestExit, Milestone, RunReport, Timings};

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
    /// virtio-net NICs, one device each, after every other device (so the
    /// guest names them eth0, eth1, ... in this order).
    pub net: Vec<NetConfig>,
    /// Test only: the device (`virtio-fs:TAG`, `virtio-vsock` or
    /// `virtio-net:INDEX`) whose
    /// thread fails on its first queue notification.
    pub inject_device_fault: Option<String>,
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
            net: Vec::new(),
            inject_device_fault: None,
        }
    }
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
    #[error("device {device} failed: {error}")]
    DeviceFailed { device: String, error: String },
}

/// A built VM, ready to run.
pub struct Vm {
    config: VmConfig,
    /// Kept alive for as long as the VM runs: KVM holds its fd and mappings.
    /// Device threads hold it weakly, to unregister their ioeventfds.
    _kvm_vm: Arc<VmFd>,
    _mem: GuestMemoryMmap,
    vcpus: Vec<Vcpu>,
    serial: Arc<Mutex<SerialConsole>>,
    console: ConsoleOutput,
    /// Host address ranges of guest RAM, to tell guest pages from the VMM's.
    guest_ranges: Vec<(u64, u64)>,
    events: Receiver<VmEvent>,
    /// Kept until the run starts, for the control channel's reader; then
    /// dropped, so the channel closes when every vCPU and device is gone.
    events_tx: Option<VmEvents>,
    control: Option<ControlSender>,
    gate: Arc<VcpuGate>,
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
        let vm = Arc::new(kvm.create_vm().map_err(VmError::CreateVm)?);
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
            u64::from(guest_abi::EVENT_PORT),
            1,
        )?;
        let mut mmio_bus = Bus::new();
        let failures = |device: String| {
            let inject = config.inject_device_fault.as_deref() == Some(device.as_str());
            DeviceFailures::new(events_tx.clone(), device).with_injected_fault(inject)
        };
        let mut devices: Vec<Arc<Mutex<dyn VirtioDevice>>> = Vec::new();
        if config.rng {
            devices.push(Arc::new(Mutex::new(Rng::new())));
        }
        if let Some((cid, uds)) = &config.vsock {
            let vsock = Vsock::new(*cid, uds.clone())
                .map_err(|e| VmError::Virtio(e.to_string()))?
                .with_failures(failures("virtio-vsock".into()));
            devices.push(Arc::new(Mutex::new(vsock)));
        }
        if !config.fs.is_empty() {
            crate::devices::virtio::fs::limits::raise_fd_limit();
        }
        for share in &config.fs {
            let fs = Fs::new(share.clone())
                .map_err(|e| VmError::Virtio(e.to_string()))?
                .with_failures(failures(format!("virtio-fs:{}", share.tag)));
            devices.push(Arc::new(Mutex::new(fs)));
        }
        for (index, nic) in config.net.iter().enumerate() {
            let net = Net::new(nic.clone())
                .map_err(|e| VmError::Virtio(format!("nic {index}: {e}")))?
                .with_failures(failures(format!("virtio-net:{index}")));
            devices.push(Arc::new(Mutex::new(net)));
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
        let gate = Arc::new(VcpuGate::new(config.cpus));
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
                gate: gate.clone(),
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
            events_tx: Some(events_tx),
            control: None,
            gate,
            vmm_start_ns,
            cmdline,
        })
    }

    /// Serves `control` while the VM runs: requests from it reach the run
    /// loop, and every event and reply goes out on it.
    pub fn attach_control(
        &mut self,
        control: &crate::control::ControlChannel,
    ) -> Result<(), VmError> {
        if let Some(events) = &self.events_tx {
            control
                .spawn_reader(events.clone())
                .map_err(VmError::Thread)?;
        }
        self.control = Some(control.sender());
        Ok(())
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
/// (an irqfd) and its `QueueNotify` offered for an ioeventfd, and returns
/// the `virtio_mmio.device=` arguments declaring them.
fn attach_virtio(
    vm: &Arc<VmFd>,
    mem: &GuestMemoryMmap,
    mmio_bus: &mut Bus,
    devices: Vec<Arc<Mutex<dyn VirtioDevice>>>,
) -> Result<Vec<String>, VmError> {
    let mut args = Vec::new();
    let ioevents: Arc<dyn IoEventRegistry> = Arc::new(KvmIoEvents::new(vm));
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
            .map_err(|e| VmError::Virtio(e.to_string()))?
            .with_notify_binding(NotifyBinding::new(
                Arc::clone(&ioevents),
                base + QUEUE_NOTIFY_OFFSET,
            ));
        mmio_bus.insert(
            Arc::new(Mutex::new(transport)),
            base,
            layout::VIRTIO_MMIO_SIZE,
        )?;
        args.push(format!("virtio_mmio.device=4K@{base:#x}:{gsi}"));
    }
    Ok(args)
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
