//! `hull run`: one container in a fresh sandbox, from boot to teardown:
//! create → attach streams → start → wait (on its own connection) → drain
//! output → destroy → power off → teardown. Signals received meanwhile go
//! to the container's init; before it exists they abort the boot.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use agent_protocol::container::{ExitStatus, Stream};

use super::signals::{SignalError, SignalForwarder, FORWARDED};
use super::stdio::{HostStdio, Relays};
use super::tty::{self, RawMode};
use super::vmm::VmmKiller;
use super::{Client, Sandbox, SandboxConfig, SandboxError, Timings};
use crate::bundle::Bundle;
use crate::state::ContainerStatus;

/// How long output streams may stay open after the process was reported
/// exited before they are cut.
/// How long teardown waits for each answer of the agent.
const TEARDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub const DEFAULT_OUTPUT_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Signals(#[from] SignalError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("interrupted by {} before the container started", signal_name(*.0))]
    Interrupted(i32),
    #[error("cannot put the terminal in raw mode: {0}")]
    RawMode(io::Error),
    #[error("{0}")]
    Lifecycle(String),
    #[error("cannot watch the container's host process: {0}")]
    Standin(io::Error),
}

/// What the caller does at the steps of a run. `hull run` starts the
/// process itself; the sandbox process behind `hull create` reports to its
/// creator instead and leaves the start to `hull start`.
pub trait Lifecycle: Send {
    /// The state is saved and the network namespace entered; the network
    /// is not wired nor the VM started yet. An error aborts the run.
    fn prepared(&mut self, _store: &crate::state::StateStore, _id: &str) -> Result<(), String> {
        Ok(())
    }
    /// The container exists, stopped before exec, its streams attached.
    /// An error aborts the run (everything is torn down).
    fn created(&mut self, _sandbox: &Sandbox) -> Result<(), String> {
        Ok(())
    }
    /// Whether [`run_with`] starts the process (else someone else does).
    fn starts(&self) -> bool {
        true
    }
    /// Right before the start (only when [`Self::starts`]).
    fn starting(&mut self, _sandbox: &Sandbox) -> Result<(), String> {
        Ok(())
    }
    /// Right after the start (only when [`Self::starts`]).
    fn started(&mut self, _sandbox: &Sandbox) {}
    /// Whether the state directory stays after the run (for `hull delete`).
    fn keeps_state(&self) -> bool {
        false
    }
}

/// `hull run`'s plain lifecycle: start at once, keep nothing.
#[derive(Debug, Default)]
pub struct Immediate;

impl Lifecycle for Immediate {}

/// What to run and how.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub sandbox: SandboxConfig,
    pub output_grace: Duration,
    /// Forward [`FORWARDED`] signals (and SIGWINCH) received by this process;
    /// needs [`run`] to be called before any other thread is started.
    pub forward_signals: bool,
    /// A pod's app container: the sandbox whose VM it joins (else it boots
    /// its own).
    pub pod: Option<super::member::PodSandbox>,
}

/// How the run ended.
#[derive(Debug)]
pub struct RunOutcome {
    pub status: ExitStatus,
    pub timings: Timings,
    /// The container's stand-in, still running: to be let go with
    /// `status`.
    pub standin: Option<crate::process::standin::Standin>,
}

/// Where a received signal goes.
#[derive(Debug, Default)]
enum Target {
    /// No container yet: a terminating signal stops the VM.
    #[default]
    Booting,
    Running {
        control: Arc<Mutex<Client>>,
        id: String,
        terminal: bool,
    },
    Done,
}

#[derive(Debug, Default)]
struct Route {
    target: Target,
    killer: Option<VmmKiller>,
    interrupted: Option<i32>,
}

#[derive(Debug, Clone, Default)]
struct Router(Arc<Mutex<Route>>);

impl Router {
    fn lock(&self) -> MutexGuard<'_, Route> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_killer(&self, killer: VmmKiller) {
        let mut route = self.lock();
        if route.interrupted.is_some() {
            killer.kill();
        }
        route.killer = Some(killer);
    }

    fn deliver(&self, signal: i32, host_tty: &Option<std::fs::File>) {
        let mut route = self.lock();
        match &route.target {
            Target::Running {
                control,
                id,
                terminal,
            } => {
                let mut client = control.lock().unwrap_or_else(|p| p.into_inner());
                // Failures surface in the main flow (the wait ends).
                let _ = if signal == libc::SIGWINCH {
                    match (terminal, host_tty.as_ref().and_then(tty::window_size)) {
                        (true, Some(size)) => client.resize_tty(id, None, size),
                        _ => Ok(()),
                    }
                } else {
                    client.signal(id, None, signal, false)
                };
            }
            // The stand-in was killed: the container's pid is gone.
            Target::Booting if terminates(signal) || signal == libc::SIGKILL => {
                route.interrupted.get_or_insert(signal);
                if let Some(k) = &route.killer {
                    k.kill();
                }
            }
            Target::Booting | Target::Done => {}
        }
    }

    fn set(&self, target: Target) {
        self.lock().target = target;
    }

    /// The error to report: the interruption if there was one.
    fn fail(&self, error: impl Into<SandboxError>) -> RunError {
        match self.lock().interrupted {
            Some(signal) => RunError::Interrupted(signal),
            None => RunError::Sandbox(error.into()),
        }
    }
}

fn terminates(signal: i32) -> bool {
    matches!(
        signal,
        libc::SIGINT | libc::SIGTERM | libc::SIGHUP | libc::SIGQUIT
    )
}

fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        n => format!("signal {n}"),
    }
}

/// Runs the bundle's process in a new sandbox with `stdio` as its stdio and
/// returns its exit status. Everything set up is torn down before this
/// returns, on success and on every error.
pub fn run(opts: &RunOptions, bundle: &Bundle, stdio: HostStdio) -> Result<RunOutcome, RunError> {
    run_with(opts, bundle, stdio, &mut Immediate)
}

/// [`run`] with `lifecycle` called at each step.
pub fn run_with(
    opts: &RunOptions,
    bundle: &Bundle,
    stdio: HostStdio,
    lifecycle: &mut dyn Lifecycle,
) -> Result<RunOutcome, RunError> {
    let mut timings = Timings::new();
    let router = Router::default();
    let host_tty = stdio.stdout.try_clone().ok();
    let _signals = if opts.forward_signals {
        let r = router.clone();
        let mut wanted = FORWARDED.to_vec();
        wanted.push(libc::SIGWINCH);
        Some(SignalForwarder::start(&wanted, move |s| {
            r.deliver(s, &host_tty)
        })?)
    } else {
        None
    };
    let r = router.clone();
    let mut prepared = |store: &crate::state::StateStore, id: &str| lifecycle.prepared(store, id);
    let booted = match &opts.pod {
        Some(pod) => Sandbox::join(&opts.sandbox, pod, bundle, &mut timings, &mut prepared),
        None => Sandbox::boot_with(
            &opts.sandbox,
            bundle,
            &mut timings,
            &mut prepared,
            move |k| r.set_killer(k),
        ),
    };
    let mut sandbox = booted.map_err(|e| router.fail(e))?;
    let mut standin = sandbox.take_standin();
    if let Some(s) = standin.as_mut() {
        let r = router.clone();
        let host_tty = stdio.stdout.try_clone().ok();
        s.forward(move |signal| r.deliver(signal, &host_tty))
            .map_err(RunError::Standin)?;
    }
    let id = sandbox.id().to_owned();
    let terminal = bundle.terminal();
    let stdin = stdio.stdin.is_some();

    let mut config = bundle.container_config(&id);
    if let Some(pod) = &opts.pod {
        config = super::member::guest_config(config, pod);
    }
    if let (true, Some(process)) = (terminal, config.spec.process_mut()) {
        crate::bundle::spec::default_console_size(process, tty::window_size(&stdio.stdout));
    }
    let created = sandbox.lock_control().create(&id, &config, stdin);
    created.map_err(|e| router.fail(sandbox.explain(e)))?;
    timings.mark("container_create");
    // Status updates only inform `hull state`/`hull list`: a failed one
    // does not stop the run.
    let _ = sandbox.set_status(ContainerStatus::Created);
    router.set(Target::Running {
        control: sandbox.control(),
        id: id.clone(),
        terminal,
    });

    let mut streams = Vec::new();
    for kind in Stream::for_process(terminal, stdin) {
        streams.push((kind, sandbox.attach(&id, None, kind)?));
    }
    let raw = match (terminal, &stdio.stdin) {
        (true, Some(input)) => RawMode::enable(input).map_err(RunError::RawMode)?,
        _ => None,
    };
    let relays = Relays::start(streams, stdio).map_err(SandboxError::from)?;
    let mut waiter = sandbox.connect()?;
    timings.mark("streams_attach");
    lifecycle.created(&sandbox).map_err(RunError::Lifecycle)?;
    if lifecycle.keeps_state() {
        sandbox.keep_state();
    }
    if lifecycle.starts() {
        lifecycle.starting(&sandbox).map_err(RunError::Lifecycle)?;
        let started = sandbox.lock_control().start(&id, None);
        started.map_err(|e| sandbox.explain(e))?;
        timings.mark("process_start");
        let _ = sandbox.set_status(ContainerStatus::Running);
        lifecycle.started(&sandbox);
    }

    let exited = waiter.wait(&id, None);
    let status = exited.map_err(|e| sandbox.explain(e))?;
    timings.mark("exit_delivered");
    let _ = sandbox.set_status(ContainerStatus::Stopped);
    router.set(Target::Done);
    // Output errors (a closed stdout) do not change the workload's status.
    let _ = relays.finish(opts.output_grace);
    drop(raw);
    timings.mark("output_drain");

    // The VM goes away right after; a failed destroy changes nothing.
    {
        let mut control = sandbox.lock_control();
        // Past this point an agent that does not answer is killed with its VM.
        let _ = control.set_timeout(Some(TEARDOWN_TIMEOUT));
        let _ = control.destroy(&id);
    }
    drop(waiter);
    if let Err(e) = sandbox.shutdown() {
        // The workload's end is known: its pid ends like it all the same.
        if let Some(s) = standin {
            s.release(status);
        }
        return Err(e.into());
    }
    timings.mark("teardown");
    Ok(RunOutcome {
        status,
        timings,
        standin,
    })
}
