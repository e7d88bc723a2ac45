//! Running a built VM: one thread per vCPU, the main thread waiting on
//! [`VmEvent`]s (and serving control requests), then teardown.

use std::sync::mpsc::RecvTimeoutError;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vmm_control::{truncate_text, Event, Reply, Request, RequestMessage, VmState};
use vmm_sys_util::signal::Killable;

use super::{GuestExit, Milestone, RunReport, Timings, Vm, VmError, CONSOLE_DRAIN_LIMIT};
use crate::clock::{monotonic_ns, rss_kib};
use crate::event::VmEvent;
use crate::vcpu::{self, gate::VcpuGate};

/// How long a pause request waits for every vCPU to leave KVM_RUN.
const PAUSE_TIMEOUT: Duration = Duration::from_secs(10);

type VcpuThreads = Vec<JoinHandle<Option<u64>>>;

impl Vm {
    /// Runs the guest to its end, then stops every vCPU and flushes the console.
    pub fn run(self) -> Result<RunReport, VmError> {
        self.run_observed(&mut |_| {})
    }

    /// Like [`Vm::run`], calling `observe` at each [`Milestone`] as it
    /// happens. With a control channel attached, every milestone and the
    /// end (as the run's last event) are also sent on it.
    pub fn run_observed(
        mut self,
        observe: &mut dyn FnMut(Milestone<'_>),
    ) -> Result<RunReport, VmError> {
        let outcome = self.run_inner(observe);
        if let Some(control) = &self.control {
            control.event(monotonic_ns(), end_event(&outcome));
        }
        outcome
    }

    fn run_inner(&mut self, observe: &mut dyn FnMut(Milestone<'_>)) -> Result<RunReport, VmError> {
        vcpu::install_kick_handler().map_err(VmError::Signal)?;
        let mut threads: VcpuThreads = Vec::with_capacity(self.vcpus.len());
        for v in self.vcpus.drain(..) {
            let spawned = std::thread::Builder::new()
                .name(format!("vcpu{}", v.id))
                .spawn(move || v.run());
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => {
                    let _ = stop_vcpus(&self.gate, threads);
                    return Err(VmError::Thread(e));
                }
            }
        }
        // From here on only the vCPUs, devices and the control reader send.
        self.events_tx = None;
        let mut timings = Timings {
            vmm_start_ns: self.vmm_start_ns,
            ..Default::default()
        };
        let outcome = self.wait(&threads, &mut timings, observe);
        let rips = stop_vcpus(&self.gate, threads);
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
        threads: &VcpuThreads,
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
                        self.send(ns, Event::FirstKvmRun);
                        observe(Milestone::FirstKvmRun(timings));
                    }
                    continue;
                }
                VmEvent::AgentReady { ns } => {
                    if timings.agent_ready_ns.is_none() {
                        timings.agent_ready_ns = Some(ns);
                        (timings.vmm_rss_kib, timings.guest_rss_kib) = rss_kib(&self.guest_ranges);
                        self.send(
                            ns,
                            Event::AgentReady {
                                vmm_rss_kib: timings.vmm_rss_kib,
                                guest_rss_kib: timings.guest_rss_kib,
                            },
                        );
                        observe(Milestone::AgentReady(timings));
                    }
                    continue;
                }
                VmEvent::Request(request) => {
                    if self.serve(request, threads) {
                        GuestExit::Stopped
                    } else {
                        continue;
                    }
                }
                VmEvent::PowerOff => GuestExit::PowerOff,
                VmEvent::Reset => GuestExit::Reset,
                VmEvent::TripleFault { cpu } => GuestExit::TripleFault { cpu },
                VmEvent::Halted { cpu } => GuestExit::Halted { cpu },
                VmEvent::Crashed { cpu } => GuestExit::Crashed { cpu },
                VmEvent::VcpuFailed(e) => return Err(VmError::Vcpu(e)),
                VmEvent::DeviceFailed { device, error } => {
                    return Err(VmError::DeviceFailed { device, error })
                }
            });
        }
    }

    /// Answers one control request; true when the VM is to stop now.
    fn serve(&self, message: RequestMessage, threads: &VcpuThreads) -> bool {
        let (reply, stop) = match message.request {
            Request::Pause => (pause(&self.gate, threads), false),
            Request::Resume => {
                self.gate.resume();
                (done(VmState::Running), false)
            }
            Request::Shutdown => (done(VmState::Stopping), true),
        };
        if let Some(control) = &self.control {
            control.reply(monotonic_ns(), message.id, reply);
        }
        stop
    }

    fn send(&self, ns: u64, event: Event) {
        if let Some(control) = &self.control {
            control.event(ns, event);
        }
    }
}

fn done(state: VmState) -> Reply {
    Reply::Done { state }
}

/// Parks every vCPU outside KVM_RUN; undone if they do not all stop in time.
fn pause(gate: &VcpuGate, threads: &VcpuThreads) -> Reply {
    if gate.is_paused() {
        return done(VmState::Paused);
    }
    gate.pause();
    kick(threads);
    if gate.wait_parked(PAUSE_TIMEOUT) {
        done(VmState::Paused)
    } else {
        gate.resume();
        Reply::Refused {
            error: format!("the vCPUs did not stop within {PAUSE_TIMEOUT:?}"),
        }
    }
}

/// The control channel's end event for a run's outcome.
pub fn end_event(outcome: &Result<RunReport, VmError>) -> Event {
    match outcome {
        Ok(report) => report.exit.event(),
        Err(VmError::Timeout { after, .. }) => Event::Timeout {
            after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        },
        Err(VmError::Vcpu(e)) => Event::VcpuFailed {
            error: truncate_text(e.to_string()),
        },
        Err(VmError::DeviceFailed { device, error }) => Event::DeviceFailed {
            device: truncate_text(device.clone()),
            error: truncate_text(error.clone()),
        },
        Err(e) => Event::Failed {
            error: truncate_text(e.to_string()),
        },
    }
}

/// Kicks every vCPU thread out of KVM_RUN.
fn kick(threads: &VcpuThreads) {
    for t in threads {
        // A thread that already ended has nothing to kick.
        let _ = t.kill(vcpu::kick_signal());
    }
}

/// Stops the vCPUs at the gate, kicks them out of KVM_RUN, joins them;
/// returns each vCPU's last RIP.
fn stop_vcpus(gate: &VcpuGate, threads: VcpuThreads) -> Vec<Option<u64>> {
    gate.stop();
    kick(&threads);
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
    fn every_outcome_has_its_end_event() {
        let failed = Err(VmError::DeviceFailed {
            device: "virtio-fs:hullshare".into(),
            error: "x".repeat(5000),
        });
        match end_event(&failed) {
            Event::DeviceFailed { device, error } => {
                assert_eq!(device, "virtio-fs:hullshare");
                assert_eq!(error.len(), vmm_control::MAX_TEXT_BYTES);
            }
            other => panic!("{other:?}"),
        }
        let timeout = Err(VmError::Timeout {
            after: Duration::from_millis(1500),
            where_: String::new(),
        });
        assert_eq!(end_event(&timeout), Event::Timeout { after_ms: 1500 });
        assert!(matches!(
            end_event(&Err(VmError::EventsClosed)),
            Event::Failed { .. }
        ));
        assert_eq!(GuestExit::Stopped.event(), Event::Stopped);
        assert!(GuestExit::Stopped.is_clean() && !GuestExit::Reset.is_clean());
    }
}
