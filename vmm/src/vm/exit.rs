//! How a run ended and what it measured.

use vmm_control::Event;

/// How the guest ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestExit {
    PowerOff,
    Reset,
    TripleFault {
        cpu: u32,
    },
    Halted {
        cpu: u32,
    },
    Crashed {
        cpu: u32,
    },
    /// Stopped on the control channel's shutdown request.
    Stopped,
}

impl GuestExit {
    /// Only an orderly power-off, or a stop the host asked for, is a clean end.
    pub fn is_clean(&self) -> bool {
        matches!(self, GuestExit::PowerOff | GuestExit::Stopped)
    }

    /// The control channel's end event for this exit.
    pub fn event(&self) -> Event {
        match *self {
            Self::PowerOff => Event::PowerOff,
            Self::Reset => Event::Reset,
            Self::TripleFault { cpu } => Event::TripleFault { cpu },
            Self::Halted { cpu } => Event::Halted { cpu },
            Self::Crashed { cpu } => Event::Crashed { cpu },
            Self::Stopped => Event::Stopped,
        }
    }
}

impl std::fmt::Display for GuestExit {
    /// The words of the control channel's end event, so a log and the
    /// runtime's report say the same.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.event().fmt(f)
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
