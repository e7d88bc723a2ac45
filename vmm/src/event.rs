//! Things that happen to a running VM, sent by vCPU threads, devices and
//! the control channel's reader to the VM's main loop. A leaf module: it
//! imports nothing from the rest of the crate, so the VM, the vCPUs and the
//! devices all depend on it and never on each other through it.

use std::sync::mpsc::{self, Receiver, Sender};

use vmm_control::RequestMessage;

/// Why a vCPU thread stopped on its own.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum VcpuError {
    #[error("KVM_RUN failed on vCPU {cpu}: {errno}")]
    Run { cpu: u32, errno: String },
    #[error("KVM internal error on vCPU {cpu} (suberror {suberror}{hint})")]
    Internal {
        cpu: u32,
        suberror: u32,
        hint: &'static str,
    },
    #[error("KVM_RUN entry failure on vCPU {cpu}: hardware reason {reason:#x}")]
    FailEntry { cpu: u32, reason: u64 },
    #[error("unexpected KVM exit on vCPU {cpu}: {exit}")]
    UnexpectedExit { cpu: u32, exit: String },
}

#[derive(Debug)]
pub enum VmEvent {
    /// A vCPU thread is about to enter KVM_RUN for the first time (CLOCK_MONOTONIC ns).
    VcpuStarted { ns: u64 },
    /// The agent reported ready on the event port (CLOCK_MONOTONIC ns).
    AgentReady { ns: u64 },
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
    /// A device's worker thread failed or panicked.
    DeviceFailed { device: String, error: String },
    /// The runtime asked for something on the control channel.
    Request(RequestMessage),
}

/// A cloneable handle for sending [`VmEvent`]s to the VM's main loop.
#[derive(Clone, Debug)]
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

/// How a device's worker thread reports its failure: to the VM (when the
/// device is attached to one) under the device's name. Also carries the
/// hidden test-only fault injection (`hull-vmm --inject-device-fault`).
#[derive(Clone, Debug, Default)]
pub struct DeviceFailures {
    target: Option<(VmEvents, String)>,
    inject_fault: bool,
}

impl DeviceFailures {
    /// Reports to `events` as `device`.
    pub fn new(events: VmEvents, device: impl Into<String>) -> Self {
        Self {
            target: Some((events, device.into())),
            inject_fault: false,
        }
    }

    /// Makes the device's worker fail on its first queue notification
    /// (for tests of the failure path; no real fault is needed).
    pub fn with_injected_fault(mut self, inject: bool) -> Self {
        self.inject_fault = inject;
        self
    }

    pub fn inject_fault(&self) -> bool {
        self.inject_fault
    }

    /// The device's name, if it reports anywhere.
    pub fn device(&self) -> Option<&str> {
        self.target.as_ref().map(|(_, d)| d.as_str())
    }

    /// Reports that the device's thread failed with `error`.
    pub fn report(&self, error: String) {
        if let Some((events, device)) = &self.target {
            events.send(VmEvent::DeviceFailed {
                device: device.clone(),
                error,
            });
        }
    }
}
