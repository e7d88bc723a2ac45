//! What the commands acting on an existing container share: its recorded
//! state, its status now, and a connection to its agent.

use anyhow::{bail, Context};

use crate::Global;
use runtime::process::pidfd::PidFd;
use runtime::sandbox::Client;
use runtime::state::{ContainerState, ContainerStatus, StateStore};

/// A container looked up by id.
pub struct Container {
    pub store: StateStore,
    pub state: ContainerState,
    pub status: ContainerStatus,
}

impl Container {
    pub fn load(global: &Global, id: &str) -> anyhow::Result<Self> {
        let store = StateStore::new(&global.root);
        let state = store.load(id)?;
        let status = state.current_status();
        Ok(Self {
            store,
            state,
            status,
        })
    }

    pub fn id(&self) -> &str {
        &self.state.id
    }

    /// A hello'd connection to the container's agent, its requests bounded
    /// by `timeouts.agent_request_secs`.
    pub fn agent(&self, global: &Global) -> anyhow::Result<Client> {
        let deadline = global
            .config()
            .map_or(runtime::sandbox::client::REQUEST_DEADLINE, |c| {
                c.agent_deadline()
            });
        let (client, _) = Client::connect_within(&self.state.hull.vsock_socket, deadline)
            .with_context(|| format!("cannot reach the sandbox of container {}", self.id()))?;
        Ok(client)
    }

    /// The sandbox process, if it still runs.
    pub fn sandbox_process(&self) -> anyhow::Result<Option<PidFd>> {
        Ok(PidFd::open(
            self.state.pid,
            self.state.hull.sandbox_start_time,
        )?)
    }

    /// hull-vmm, if it still runs.
    pub fn vmm_process(&self) -> anyhow::Result<Option<PidFd>> {
        Ok(PidFd::open(
            self.state.hull.vmm_pid,
            self.state.hull.vmm_start_time,
        )?)
    }

    /// Fails like runc when the container is not running (or paused/created
    /// when `allowed` says so).
    pub fn require(&self, allowed: impl Fn(ContainerStatus) -> bool) -> anyhow::Result<()> {
        if allowed(self.status) {
            return Ok(());
        }
        match self.status {
            ContainerStatus::Stopped => bail!("container not running"),
            ContainerStatus::Paused => bail!("container {} is paused", self.id()),
            ContainerStatus::Created => bail!("container {} is created: start it first", self.id()),
            s => bail!("container {} is {s}", self.id()),
        }
    }

    /// The spec the container was created with (not the bundle's
    /// `config.json` now, which may have changed since).
    pub fn spec(&self) -> anyhow::Result<runtime::bundle::spec::Spec> {
        Ok(self.store.load_spec(self.id())?)
    }

    /// The OCI state JSON (for hooks' stdin).
    #[allow(dead_code)]
    pub fn state_json(&self) -> anyhow::Result<Vec<u8>> {
        Ok(serde_json::to_vec(&self.state.oci(String::new()))?)
    }
}
