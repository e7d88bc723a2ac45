//! One thread per vCPU: KVM_RUN in a loop, port I/O and MMIO exits dispatched
//! to the buses, terminal exits reported to the VM as [`VmEvent`]s.
//!
//! Stopping and pausing: the VM closes the shared [`VcpuGate`] and sends
//! `KICK_SIGNAL` to every vCPU thread. The handler sets
//! `kvm_run.immediate_exit`, so a thread that is about to enter KVM_RUN
//! returns at once, and one inside it returns with EINTR; either way it
//! comes to the gate, which ends it or parks it.

pub mod gate;

use std::cell::Cell;
use std::sync::{Arc, OnceLock};

use kvm_bindings::kvm_run;
use kvm_ioctls::{VcpuExit, VcpuFd};

use crate::clock::monotonic_ns;
use crate::devices::bus::Bus;
pub use crate::event::VcpuError;
use crate::event::{VmEvent, VmEvents};
use gate::{Pass, VcpuGate};

const KVM_SYSTEM_EVENT_SHUTDOWN: u32 = 1;
const KVM_SYSTEM_EVENT_RESET: u32 = 2;
const KVM_SYSTEM_EVENT_CRASH: u32 = 3;
const KVM_INTERNAL_ERROR_EMULATION: u32 = 1;

thread_local! {
    /// This thread's kvm_run mapping, for the kick signal handler.
    static KVM_RUN: Cell<*mut kvm_run> = const { Cell::new(std::ptr::null_mut()) };
}

/// The real-time signal used to kick vCPU threads out of KVM_RUN.
pub fn kick_signal() -> i32 {
    vmm_sys_util::signal::SIGRTMIN()
}

extern "C" fn handle_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    KVM_RUN.with(|run| {
        let ptr = run.get();
        if !ptr.is_null() {
            // SAFETY: the pointer is set by this thread to its own vCPU's
            // kvm_run mapping while the VcpuFd is alive, and cleared before the
            // VcpuFd is dropped; a volatile byte store is async-signal-safe.
            unsafe { std::ptr::addr_of_mut!((*ptr).immediate_exit).write_volatile(1) };
        }
    });
}

/// Installs the kick handler (idempotent; call before spawning vCPUs).
pub fn install_kick_handler() -> std::io::Result<()> {
    static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            vmm_sys_util::signal::register_signal_handler(kick_signal(), handle_kick)
                .map_err(|e| e.errno())
        })
        .map_err(std::io::Error::from_raw_os_error)
}

/// What a vCPU thread needs.
pub struct Vcpu {
    pub id: u32,
    pub fd: VcpuFd,
    pub io_bus: Bus,
    pub mmio_bus: Bus,
    pub events: VmEvents,
    pub gate: Arc<VcpuGate>,
}

enum Step {
    Continue,
    Stop(Option<VmEvent>),
}

impl Vcpu {
    /// Runs until stopped or until the guest does something terminal;
    /// returns where the vCPU was (its RIP), for diagnosing a stuck guest.
    pub fn run(mut self) -> Option<u64> {
        KVM_RUN.with(|run| run.set(self.fd.get_kvm_run() as *mut kvm_run));
        self.events
            .send(VmEvent::VcpuStarted { ns: monotonic_ns() });
        while self.gate.pass() == Pass::Run {
            match self.step() {
                Step::Continue => {}
                Step::Stop(event) => {
                    if let Some(event) = event {
                        self.events.send(event);
                    }
                    break;
                }
            }
        }
        KVM_RUN.with(|run| run.set(std::ptr::null_mut()));
        self.gate.exited();
        self.fd.get_regs().ok().map(|r| r.rip)
    }

    fn step(&mut self) -> Step {
        let cpu = self.id;
        let exit = match self.fd.run() {
            Ok(exit) => exit,
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                self.fd.set_kvm_immediate_exit(0);
                return Step::Continue;
            }
            Err(e) => {
                let errno = e.to_string();
                return Step::Stop(Some(VmEvent::VcpuFailed(VcpuError::Run { cpu, errno })));
            }
        };
        match exit {
            VcpuExit::IoIn(port, data) => {
                if !self.io_bus.read(u64::from(port), data) {
                    data.fill(0xff);
                }
            }
            VcpuExit::IoOut(port, data) => {
                self.io_bus.write(u64::from(port), data);
            }
            VcpuExit::MmioRead(addr, data) => {
                if !self.mmio_bus.read(addr, data) {
                    data.fill(0);
                }
            }
            VcpuExit::MmioWrite(addr, data) => {
                self.mmio_bus.write(addr, data);
            }
            VcpuExit::Shutdown => return Step::Stop(Some(VmEvent::TripleFault { cpu })),
            VcpuExit::Hlt => return Step::Stop(Some(VmEvent::Halted { cpu })),
            VcpuExit::SystemEvent(kind, _) => {
                return Step::Stop(Some(match kind {
                    KVM_SYSTEM_EVENT_SHUTDOWN => VmEvent::PowerOff,
                    KVM_SYSTEM_EVENT_RESET => VmEvent::Reset,
                    KVM_SYSTEM_EVENT_CRASH => VmEvent::Crashed { cpu },
                    other => VmEvent::VcpuFailed(VcpuError::UnexpectedExit {
                        cpu,
                        exit: format!("system event {other}"),
                    }),
                }))
            }
            VcpuExit::FailEntry(reason, _) => {
                return Step::Stop(Some(VmEvent::VcpuFailed(VcpuError::FailEntry {
                    cpu,
                    reason,
                })))
            }
            VcpuExit::InternalError => {
                let suberror = self.internal_suberror();
                let hint = if suberror == KVM_INTERNAL_ERROR_EMULATION {
                    ": emulation failure; on a nested or paravirtual /dev/kvm use a KVM test host"
                } else {
                    ""
                };
                return Step::Stop(Some(VmEvent::VcpuFailed(VcpuError::Internal {
                    cpu,
                    suberror,
                    hint,
                })));
            }
            other => {
                let exit = format!("{other:?}");
                return Step::Stop(Some(VmEvent::VcpuFailed(VcpuError::UnexpectedExit {
                    cpu,
                    exit,
                })));
            }
        }
        Step::Continue
    }

    fn internal_suberror(&mut self) -> u32 {
        let run = self.fd.get_kvm_run();
        // SAFETY: after a KVM_EXIT_INTERNAL_ERROR exit, the `internal` member
        // of the exit union is the one KVM filled in.
        unsafe { run.__bindgen_anon_1.internal.suberror }
    }
}
