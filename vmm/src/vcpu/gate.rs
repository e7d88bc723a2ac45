//! The gate every vCPU thread passes before each KVM_RUN: it stops the
//! thread for good (teardown) or parks it while the VM is paused.
//!
//! Pausing: the VM closes the gate ([`VcpuGate::pause`]), kicks every vCPU
//! thread out of KVM_RUN (the kick signal sets `immediate_exit`, so a
//! thread about to enter returns at once) and waits until every live vCPU
//! is parked ([`VcpuGate::wait_parked`]). Resuming opens the gate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// What a vCPU thread does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Run,
    Stop,
}

#[derive(Debug)]
struct State {
    paused: bool,
    /// vCPU threads waiting in the gate.
    parked: u32,
    /// vCPU threads that have not ended.
    live: u32,
}

#[derive(Debug)]
pub struct VcpuGate {
    stop: AtomicBool,
    /// Mirrors `State::paused`, so a running vCPU need not lock per exit.
    paused: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
}

impl VcpuGate {
    pub fn new(vcpus: u32) -> Self {
        Self {
            stop: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            state: Mutex::new(State {
                paused: false,
                parked: 0,
                live: vcpus,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by a vCPU thread before each KVM_RUN; blocks while paused.
    pub fn pass(&self) -> Pass {
        if self.stop.load(Ordering::Acquire) {
            return Pass::Stop;
        }
        if !self.paused.load(Ordering::Acquire) {
            return Pass::Run;
        }
        let mut state = self.lock();
        state.parked += 1;
        self.changed.notify_all();
        while state.paused && !self.stop.load(Ordering::Acquire) {
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        state.parked -= 1;
        if self.stop.load(Ordering::Acquire) {
            Pass::Stop
        } else {
            Pass::Run
        }
    }

    /// Called by a vCPU thread when it ends.
    pub fn exited(&self) {
        let mut state = self.lock();
        state.live = state.live.saturating_sub(1);
        self.changed.notify_all();
    }

    /// Ends every vCPU thread at its next pass (parked ones too).
    pub fn stop(&self) {
        let _state = self.lock();
        self.stop.store(true, Ordering::Release);
        self.changed.notify_all();
    }

    /// Closes the gate; the caller then kicks the vCPUs out of KVM_RUN.
    pub fn pause(&self) {
        let mut state = self.lock();
        state.paused = true;
        self.paused.store(true, Ordering::Release);
    }

    /// Waits until every live vCPU is parked; false after `timeout`.
    pub fn wait_parked(&self, timeout: Duration) -> bool {
        let state = self.lock();
        let (state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |s| s.parked < s.live)
            .unwrap_or_else(|p| p.into_inner());
        state.parked >= state.live
    }

    /// Opens the gate.
    pub fn resume(&self) {
        let mut state = self.lock();
        state.paused = false;
        self.paused.store(false, Ordering::Release);
        self.changed.notify_all();
    }

    pub fn is_paused(&self) -> bool {
        self.lock().paused
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::sync::Arc;

    use super::*;

    /// A stand-in vCPU: passes the gate in a loop, counting runs.
    fn vcpu(gate: Arc<VcpuGate>, runs: mpsc::Sender<()>) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            while gate.pass() == Pass::Run {
                let _ = runs.send(());
                std::thread::yield_now();
            }
            gate.exited();
        })
    }

    #[test]
    fn pause_parks_every_vcpu_and_resume_lets_them_run() {
        let gate = Arc::new(VcpuGate::new(2));
        let (tx, runs) = mpsc::channel();
        let threads = [vcpu(gate.clone(), tx.clone()), vcpu(gate.clone(), tx)];
        runs.recv().unwrap();
        gate.pause();
        assert!(gate.wait_parked(Duration::from_secs(30)));
        assert!(gate.is_paused());
        while runs.try_recv().is_ok() {}
        // Both are parked: nothing runs until resumed.
        assert!(runs.try_recv().is_err());
        gate.resume();
        runs.recv().unwrap();
        gate.stop();
        for t in threads {
            t.join().unwrap();
        }
        assert!(gate.wait_parked(Duration::ZERO), "no live vCPU left");
    }

    #[test]
    fn stop_releases_parked_vcpus() {
        let gate = Arc::new(VcpuGate::new(1));
        let (tx, _runs) = mpsc::channel();
        gate.pause();
        let t = vcpu(gate.clone(), tx);
        assert!(gate.wait_parked(Duration::from_secs(30)));
        gate.stop();
        t.join().unwrap();
        assert_eq!(gate.pass(), Pass::Stop);
    }

    #[test]
    fn waiting_for_a_vcpu_that_never_parks_times_out() {
        let gate = VcpuGate::new(1);
        gate.pause();
        assert!(!gate.wait_parked(Duration::from_millis(10)));
    }
}
