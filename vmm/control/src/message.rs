//! The messages on the control channel.

use serde::{Deserialize, Serialize};

/// Longest text field (an error, a device name) in bytes; senders cut
/// longer text with [`truncate_text`], receivers refuse it.
pub const MAX_TEXT_BYTES: usize = 1024;

/// One message from hull-vmm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmmMessage {
    /// Starts at 1 and grows by one per message.
    pub seq: u64,
    /// CLOCK_MONOTONIC, ns, when the event happened (or the reply was made).
    pub ns: u64,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Body {
    Event(Event),
    Reply { id: u64, reply: Reply },
}

/// Something that happened to the VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// The first message: the protocol version hull-vmm speaks.
    Hello { version: u32 },
    /// The first vCPU entered KVM_RUN.
    FirstKvmRun,
    /// The agent wrote "ready" to the guest event port. Memory sampled then.
    AgentReady {
        vmm_rss_kib: u64,
        guest_rss_kib: u64,
    },
    /// End: the agent powered the VM off (or KVM reported a shutdown).
    PowerOff,
    /// End: the guest reset the machine (a kernel panic with `panic=-1`).
    Reset,
    /// End: a vCPU triple-faulted.
    TripleFault { cpu: u32 },
    /// End: a vCPU halted with nothing to wake it.
    Halted { cpu: u32 },
    /// End: the guest reported a crash.
    Crashed { cpu: u32 },
    /// End: a vCPU thread failed (KVM error).
    VcpuFailed { error: String },
    /// End: a device's thread failed or panicked.
    DeviceFailed { device: String, error: String },
    /// End: stopped on a [`Request::Shutdown`].
    Stopped,
    /// End: `--timeout` expired.
    Timeout { after_ms: u64 },
    /// End: the VMM failed for another reason.
    Failed { error: String },
}

impl Event {
    /// Whether this is the VM's last event.
    pub fn is_end(&self) -> bool {
        !matches!(
            self,
            Self::Hello { .. } | Self::FirstKvmRun | Self::AgentReady { .. }
        )
    }

    /// Whether this end is an orderly one (hull-vmm then exits 0).
    pub fn is_clean_end(&self) -> bool {
        matches!(self, Self::PowerOff | Self::Stopped)
    }

    fn texts(&self) -> Vec<&str> {
        match self {
            Self::VcpuFailed { error } | Self::Failed { error } => vec![error],
            Self::DeviceFailed { device, error } => vec![device, error],
            _ => Vec::new(),
        }
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hello { version } => write!(f, "hull-vmm speaks control protocol {version}"),
            Self::FirstKvmRun => write!(f, "first vCPU entered the guest"),
            Self::AgentReady { .. } => write!(f, "agent ready"),
            Self::PowerOff => write!(f, "guest powered off"),
            Self::Reset => write!(
                f,
                "guest reset the machine without powering off (kernel panic or unexpected reboot)"
            ),
            Self::TripleFault { cpu } => write!(f, "guest triple-faulted on vCPU {cpu}"),
            Self::Halted { cpu } => write!(f, "guest halted vCPU {cpu} with nothing to wake it"),
            Self::Crashed { cpu } => write!(f, "guest reported a crash on vCPU {cpu}"),
            Self::VcpuFailed { error } => write!(f, "vCPU failed: {error}"),
            Self::DeviceFailed { device, error } => write!(f, "device {device} failed: {error}"),
            Self::Stopped => write!(f, "stopped on request"),
            Self::Timeout { after_ms } => write!(f, "did not finish within {after_ms} ms"),
            Self::Failed { error } => write!(f, "{error}"),
        }
    }
}

/// What the runtime asks of hull-vmm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Park every vCPU outside KVM_RUN (devices keep running).
    Pause,
    /// Let paused vCPUs run again.
    Resume,
    /// Stop the VM now (the end event is [`Event::Stopped`]).
    Shutdown,
}

/// One request from the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestMessage {
    pub id: u64,
    pub request: Request,
}

/// The VM's run state, as a reply reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmState {
    Running,
    Paused,
    Stopping,
}

/// hull-vmm's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// Done; the VM is now in `state`.
    Done { state: VmState },
    /// Not done, and why.
    Refused { error: String },
}

impl VmmMessage {
    /// The text fields, for bounds checks.
    pub(crate) fn texts(&self) -> Vec<&str> {
        match &self.body {
            Body::Event(e) => e.texts(),
            Body::Reply {
                reply: Reply::Refused { error },
                ..
            } => vec![error],
            Body::Reply { .. } => Vec::new(),
        }
    }
}

/// Cuts `text` to at most [`MAX_TEXT_BYTES`] at a character boundary.
pub fn truncate_text(mut text: String) -> String {
    if text.len() > MAX_TEXT_BYTES {
        let mut end = MAX_TEXT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
