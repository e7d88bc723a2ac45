//! The container lifecycle as a library type, as youki's `libcontainer`
//! under its CLI: a [`Container`] is looked up by id in the state store and
//! its operations (start, kill, pause, resume, update, stats, ps, delete)
//! live here; each `hull` command file parses its arguments, calls one of
//! them and prints. `create`, `run` and `exec` build sandboxes and
//! processes ([`crate::sandbox`]); this type acts on what they left.
//!
//! Every transition is checked against [`ContainerStatus`]'s guards and
//! recorded in the state store under its lock. The agent is reached with a
//! deadline on every request but `wait` ([`crate::sandbox::Client`]).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use agent_protocol::container::{Resources, Stats};

use crate::bundle::spec::{Hooks, Spec};
use crate::host::cgroups;
use crate::host::hooks::{run_hooks, run_hooks_warn, HookError, HookKind};
use crate::process::pidfd::PidFd;
use crate::sandbox::client::{Client, ClientError};
use crate::state::{remove_state_dir, ContainerState, ContainerStatus, StateError, StateStore};

/// How long a killed sandbox may take to go.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot reach the sandbox of container {id}: {source}")]
    Unreachable { id: String, source: ClientError },
    #[error(transparent)]
    Agent(#[from] ClientError),
    /// runc's wording, which engines match.
    #[error("container not running")]
    NotRunning,
    #[error("container {id} is {status}")]
    Status { id: String, status: String },
    #[error("cannot start a container that is still being created")]
    StillCreating,
    #[error("cannot start a container that has stopped")]
    StartStopped,
    #[error("cannot start an already running container")]
    AlreadyRunning,
    #[error("container {0} is not paused")]
    NotPaused(String),
    #[error("cannot delete container {id} that is not stopped: {status}")]
    NotStopped { id: String, status: String },
    #[error("process {pid} of container {id} did not die")]
    Undying { id: String, pid: i32 },
    #[error("{0}")]
    Hook(String),
    #[error(transparent)]
    Cgroup(#[from] cgroups::CgroupError),
    #[error("cannot join the interface added after create to the VM: {0}")]
    LateNetwork(String),
    #[error("cannot clean up the container's network: {0}")]
    Network(crate::host::net::NetError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, ContainerError>;

/// A container looked up by id.
pub struct Container {
    pub store: StateStore,
    pub state: ContainerState,
    pub status: ContainerStatus,
    /// The deadline of agent requests (`timeouts.agent_request_secs`).
    pub agent_deadline: Duration,
    /// `timeouts.poststart_grace_ms` (see [`Container::start`]).
    pub poststart_grace: Duration,
}

/// How long `start` lets the workload run (or exit) before it runs the
/// `poststart` hooks, by default.
pub const POSTSTART_GRACE: Duration = Duration::from_millis(250);

impl Container {
    pub fn load(root: &Path, id: &str) -> Result<Self> {
        let store = StateStore::new(root);
        let state = store.load(id)?;
        let status = state.current_status();
        Ok(Self {
            store,
            state,
            status,
            agent_deadline: crate::sandbox::client::REQUEST_DEADLINE,
            poststart_grace: POSTSTART_GRACE,
        })
    }

    pub fn id(&self) -> &str {
        &self.state.id
    }

    /// A hello'd connection to the container's agent.
    pub fn agent(&self) -> Result<Client> {
        Client::connect_within(&self.state.hull.vsock_socket, self.agent_deadline)
            .map(|(client, _)| client)
            .map_err(|source| ContainerError::Unreachable {
                id: self.id().into(),
                source,
            })
    }

    /// The container's host process (`state.pid`), if it still runs.
    pub fn host_process(&self) -> Result<Option<PidFd>> {
        self.process(self.state.pid, self.state.hull.pid_start_time)
    }

    /// The sandbox process when it is not `state.pid` (see
    /// [`crate::process::standin`]), if it still runs.
    pub fn sandbox_process(&self) -> Result<Option<PidFd>> {
        self.process(
            self.state.hull.sandbox_pid,
            self.state.hull.sandbox_start_time,
        )
    }

    /// The container's host processes that still run: its stand-in, its
    /// sandbox process, its VM's hull-vmm (a pod member has none of its
    /// own).
    fn processes(&self) -> Result<Vec<PidFd>> {
        let all = [
            self.host_process()?,
            self.sandbox_process()?,
            self.vmm_process()?,
        ];
        Ok(all.into_iter().flatten().collect())
    }

    /// hull-vmm, if it still runs.
    pub fn vmm_process(&self) -> Result<Option<PidFd>> {
        self.process(self.state.hull.vmm_pid, self.state.hull.vmm_start_time)
    }

    fn process(&self, pid: i32, start_time: u64) -> Result<Option<PidFd>> {
        PidFd::open(pid, start_time).map_err(|source| ContainerError::Io {
            what: format!("process {pid}"),
            source,
        })
    }

    /// Fails like runc when the container's status is not `allowed`.
    pub fn require(&self, allowed: impl Fn(ContainerStatus) -> bool) -> Result<()> {
        if allowed(self.status) {
            return Ok(());
        }
        Err(match self.status {
            ContainerStatus::Stopped => ContainerError::NotRunning,
            ContainerStatus::Created => ContainerError::Status {
                id: self.id().into(),
                status: "created: start it first".into(),
            },
            s => ContainerError::Status {
                id: self.id().into(),
                status: s.to_string(),
            },
        })
    }

    /// The spec the container was created with (not the bundle's
    /// `config.json` now, which may have changed since).
    pub fn spec(&self) -> Result<Spec> {
        Ok(self.store.load_spec(self.id())?)
    }

    /// The container's hooks, from that spec.
    pub fn hooks(&self) -> Result<Hooks> {
        Hooks::from_spec(self.spec()?.hooks().as_ref()).map_err(ContainerError::Hook)
    }

    /// The OCI state JSON as hooks get it on stdin: the status this
    /// operation set (`running` for `poststart` even if the workload has
    /// already exited, as runc reports it).
    pub fn state_json(&self) -> Vec<u8> {
        let mut oci = self.state.oci(String::new());
        oci.status = self.status;
        oci.pid = if self.status == ContainerStatus::Stopped {
            0
        } else {
            self.state.pid
        };
        serde_json::to_vec(&oci).unwrap_or_default()
    }

    /// Runs the hooks of `kind`, failing at the first failure.
    pub fn run_hooks(&self, hooks: &Hooks, kind: HookKind) -> Result<()> {
        run_hooks(kind, hooks.get(kind), &self.state_json())
            .map_err(|e| ContainerError::Hook(e.to_string()))
    }

    /// Runs every hook of `kind` (`poststart`, `poststop`); returns what
    /// failed, for the caller to log.
    pub fn run_hooks_warn(&self, hooks: &Hooks, kind: HookKind) -> Vec<String> {
        run_hooks_warn(kind, hooks.get(kind), &self.state_json())
            .iter()
            .map(HookError::to_string)
            .collect()
    }

    /// `start`: `startContainer` hooks, the init runs, status `running`,
    /// `poststart` hooks (their failures are returned, to be logged).
    ///
    /// The agent answers once the init has exec'd. A runc init is already
    /// running in the container when `start` lets it exec, so its first
    /// steps beat any hook; a guest process still pages its program in over
    /// virtio-fs then. So when there are `poststart` hooks, they run once
    /// the workload has exited or had [`Self::poststart_grace`] to run (a
    /// `wait` with that deadline), and see what it did first.
    pub fn start(&mut self) -> Result<Vec<String>> {
        match self.status {
            ContainerStatus::Created if !self.state.hull.foreground => {}
            ContainerStatus::Created | ContainerStatus::Creating => {
                return Err(ContainerError::StillCreating)
            }
            ContainerStatus::Stopped => return Err(ContainerError::StartStopped),
            ContainerStatus::Running | ContainerStatus::Paused => {
                return Err(ContainerError::AlreadyRunning)
            }
        }
        let hooks = self.hooks()?;
        let mut agent = self.agent()?;
        if let Some(tap) = self.state.hull.reserved_nic.clone() {
            self.join_late_interface(&tap, &mut agent)?;
        }
        self.run_hooks(&hooks, HookKind::StartContainer)?;
        agent.start(&self.state.id, None)?;
        // A workload that exits at once may be recorded stopped by its
        // sandbox process before this: it did start.
        self.state = self.store.update(&self.state.id, |s| {
            if s.status != ContainerStatus::Stopped {
                s.status = s.status.transition(ContainerStatus::Running)?;
            }
            Ok(())
        })?;
        // What the hooks are told: the status this operation set.
        self.status = ContainerStatus::Running;
        if !hooks.get(HookKind::Poststart).is_empty() && !self.poststart_grace.is_zero() {
            self.let_it_run(agent);
        }
        Ok(self.run_hooks_warn(&hooks, HookKind::Poststart))
    }

    /// Waits until the init exits or [`Self::poststart_grace`] passed; the
    /// connection is dropped either way (the agent's wait for it ends with
    /// the process).
    fn let_it_run(&self, mut agent: Client) {
        if agent.set_timeout(Some(self.poststart_grace)).is_ok() {
            let _ = agent.wait(self.id(), None);
        }
    }

    /// `kill`: the signal to the init (or, with `all`, every process). A
    /// paused container's cgroup is frozen in its guest: the kernel holds
    /// the signal until the thaw (SIGKILL acts at once), as under runc.
    pub fn kill(&self, signal: i32, all: bool) -> Result<()> {
        self.require(ContainerStatus::can_kill)?;
        self.agent()?.signal(self.id(), None, signal, all)?;
        Ok(())
    }

    /// `pause`: freezes the container's cgroup in the guest.
    pub fn pause(&mut self) -> Result<()> {
        self.switch(ContainerStatus::can_pause, true, ContainerStatus::Paused)
    }

    /// `resume`: thaws it.
    pub fn resume(&mut self) -> Result<()> {
        if self.status == ContainerStatus::Running {
            return Err(ContainerError::NotPaused(self.id().into()));
        }
        self.switch(ContainerStatus::can_resume, false, ContainerStatus::Running)
    }

    fn switch(
        &mut self,
        allowed: fn(ContainerStatus) -> bool,
        frozen: bool,
        to: ContainerStatus,
    ) -> Result<()> {
        self.require(allowed)?;
        self.agent()?.freeze(&self.state.id, frozen)?;
        self.state = self.store.update(&self.state.id, |s| {
            s.status = s.status.transition(to)?;
            Ok(())
        })?;
        self.status = self.state.status;
        Ok(())
    }

    /// `update`: new limits for the container's guest cgroup.
    pub fn update(&self, resources: Resources) -> Result<()> {
        self.require(|s| matches!(s, ContainerStatus::Created | ContainerStatus::Running))?;
        self.agent()?.update(self.id(), resources)?;
        Ok(())
    }

    /// `events --stats`: the guest cgroup's usage.
    pub fn stats(&self, agent: &mut Client) -> Result<Stats> {
        Ok(agent.stats(self.id())?)
    }

    /// `ps`: the container's host processes (its stand-in, the sandbox
    /// process, its VMM, and what is in the host cgroups it joined).
    pub fn host_pids(&self) -> Result<Vec<i32>> {
        let mut pids: BTreeSet<i32> = self.processes()?.iter().map(|p| p.pid).collect();
        for cg in &self.state.hull.cgroups {
            if let Ok(text) = std::fs::read_to_string(cg.join("cgroup.procs")) {
                pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
        }
        Ok(pids.into_iter().collect())
    }

    /// `delete`: kills what is left (with `force`, a running or paused
    /// container too), runs `poststop` (failures returned, to be logged),
    /// removes the host cgroups and the state directory.
    pub fn delete(self, force: bool) -> Result<Vec<String>> {
        let id = self.state.id.clone();
        if !self.status.can_delete(force) {
            return Err(ContainerError::NotStopped {
                id,
                status: self.status.to_string(),
            });
        }
        // The VMM dies with the sandbox process (parent-death signal), the
        // sandbox process ends the VM when the stand-in dies; killing all
        // three covers any that outlived the others.
        for p in self.processes()? {
            p.signal(libc::SIGKILL)
                .map_err(|source| ContainerError::Io {
                    what: format!("kill process {}", p.pid),
                    source,
                })?;
            if !p.wait_exit(KILL_TIMEOUT) {
                return Err(ContainerError::Undying { id, pid: p.pid });
            }
        }
        self.leave_pod();
        let mut stopped = self;
        stopped.state.status = ContainerStatus::Stopped;
        stopped.status = ContainerStatus::Stopped;
        let warnings = match stopped.hooks() {
            Ok(hooks) => stopped.run_hooks_warn(&hooks, HookKind::Poststop),
            Err(e) => vec![format!("poststop hooks not run: {e}")],
        };
        let cgroups = cgroups::remove(&stopped.state.hull.cgroups);
        let network = stopped.remove_network_leftovers();
        // A socket outside the state directory (see vsock_socket_path);
        // a pod member's is its owner's, not to be touched.
        if stopped.state.hull.pod_sandbox.is_none() {
            let _ = std::fs::remove_file(&stopped.state.hull.vsock_socket);
            if let Some(pod_socket) = &stopped.state.hull.pod_socket {
                let _ = std::fs::remove_file(pod_socket);
            }
        }
        remove_dir(&stopped.store, &id)?;
        cgroups?;
        network?;
        Ok(warnings)
    }

    /// A pod's app container whose sandbox process was killed leaves its
    /// container in the pod's VM and its binds on the share: both go (best
    /// effort: the pod may be gone too; after an orderly exit there is
    /// nothing left to remove).
    fn leave_pod(&self) {
        let (Some(_), Some(socket)) = (&self.state.hull.pod_sandbox, &self.state.hull.pod_socket)
        else {
            return;
        };
        if let Ok(mut agent) = self.agent() {
            let _ = agent.destroy(self.id());
        }
        let _ = crate::sandbox::pod_socket::request(
            socket,
            &crate::sandbox::pod_socket::PodRequest::Leave {
                id: self.id().to_string(),
            },
            None,
        );
    }

    /// An interface added to hull's namespace after `create` (`ctr run
    /// --cni`) is joined to the VM's reserved NIC `tap`, which the agent
    /// then configures as that interface. Nothing there: nothing to do.
    fn join_late_interface(&mut self, tap: &str, agent: &mut Client) -> Result<()> {
        let netns = std::path::PathBuf::from(format!("/proc/{}/ns/net", self.state.pid));
        let config = std::thread::scope(|s| {
            s.spawn(|| -> std::result::Result<_, String> {
                crate::host::netns::enter_netns(&netns).map_err(|e| e.to_string())?;
                let found = crate::host::net::discover().map_err(|e| e.to_string())?;
                match found.as_slice() {
                    [] => Ok(None),
                    [one] => crate::host::net::wire_late(tap, one)
                        .map(Some)
                        .map_err(|e| e.to_string()),
                    more => Err(format!(
                        "{} interfaces appeared after create; a VM takes one then (its reserved NIC)",
                        more.len()
                    )),
                }
            })
            .join()
            .unwrap_or_else(|_| Err("the network thread panicked".into()))
        })
        .map_err(ContainerError::LateNetwork)?;
        if let Some(config) = config {
            agent.configure_network(&config)?;
            self.state = self.store.update(self.id(), |s| {
                s.hull.reserved_nic = None;
                s.hull.wired_links = config.interfaces.iter().map(|i| i.name.clone()).collect();
                Ok(())
            })?;
        }
        Ok(())
    }

    /// What a killed sandbox left in the engine's network namespace (the
    /// qdiscs on the interfaces it wired); nothing when the sandbox made
    /// the namespace (it went with it) or the namespace is gone.
    fn remove_network_leftovers(&self) -> Result<()> {
        if self.state.hull.wired_links.is_empty() {
            return Ok(());
        }
        let spec = self.spec()?;
        match crate::bundle::spec::network_namespace_path(&spec) {
            Some(netns) if netns.exists() => {
                crate::host::net::remove_leftovers(netns, &self.state.hull.wired_links)
                    .map_err(ContainerError::Network)
            }
            _ => Ok(()),
        }
    }
}

/// `delete --force` of an id whose state is gone or was never written:
/// removes whatever directory is there.
pub fn delete_absent(root: &Path, id: &str) -> Result<()> {
    remove_dir(&StateStore::new(root), id)
}

fn remove_dir(store: &StateStore, id: &str) -> Result<()> {
    let dir = store.dir(id)?;
    remove_state_dir(&dir).map_err(|source| ContainerError::Io {
        what: format!("cannot remove {}", dir.display()),
        source,
    })
}
