//! A pod's app container: it joins the VM of its pod's sandbox container
//! instead of booting one (see [`crate::bundle::pod`]).
//!
//! [`Sandbox::join`] claims the member's own state directory, asks the
//! owner over its pod socket to put the member's rootfs and mount sources
//! on the share, starts the member's stand-in (its pid, in the namespaces
//! its spec joins or lists) and connects to the owner's agent. From there
//! it is driven like any sandbox, with its own id; its shutdown takes it
//! off the share and leaves the VM running. Namespace paths into the
//! owner's stand-in become, for the agent, joins of the owner's container.

use std::path::PathBuf;

use agent_protocol::container::{sibling_ns_path, valid_id, ContainerConfig};

use super::network::{HostNetns, NetnsMode};
use super::pod_socket::{self, PodRequest, PodSocketError};
use super::state_dir::StateDir;
use super::{Client, Role, Sandbox, SandboxConfig, SandboxError, Timings};
use crate::bundle::pod::{proc_ns_pid, SandboxRef};
use crate::bundle::spec::LinuxResources;
use crate::bundle::Bundle;
use crate::state::{ContainerState, ContainerStatus, StateStore};

/// The pod a member joins: its owner's id, host pid and sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSandbox {
    pub id: String,
    /// The owner's container pid (its stand-in).
    pub pid: i32,
    pub vsock_socket: PathBuf,
    pub pod_socket: PathBuf,
    /// The VM's memory, MiB, and vCPUs (0: not recorded).
    pub mem_mib: u32,
    pub cpus: u32,
}

impl PodSandbox {
    /// Refuses a member whose memory limit does not fit the pod's VM (its
    /// memory less `overhead_mib`, what the guest keeps for itself), or
    /// whose CPU quota asks for more vCPUs than it has; its own limits are
    /// enforced by its guest cgroup.
    pub fn check_fits(
        &self,
        resources: Option<&LinuxResources>,
        overhead_mib: u64,
    ) -> Result<(), SandboxError> {
        let cpu = resources.and_then(|r| r.cpu.as_ref());
        let quota = cpu.and_then(|c| c.quota).filter(|q| *q > 0);
        if let (Some(quota), true) = (quota, self.cpus > 0) {
            let period = cpu
                .and_then(|c| c.period)
                .filter(|p| *p > 0)
                .unwrap_or(crate::host::resources::DEFAULT_CPU_PERIOD_US);
            let want = quota.unsigned_abs().div_ceil(period);
            if want > u64::from(self.cpus) {
                return Err(SandboxError::Member(format!(
                    "the CPU quota of {want} CPUs does not fit the pod's VM of {} vCPUs: size the pod (its sandbox's limits or io.kubernetes.cri.sandbox-cpu-quota)",
                    self.cpus
                )));
            }
        }
        let limit = resources
            .and_then(|r| r.memory.as_ref())
            .and_then(|m| m.limit)
            .filter(|l| *l > 0);
        let (Some(limit), true) = (limit, self.mem_mib > 0) else {
            return Ok(());
        };
        let room = u64::from(self.mem_mib).saturating_sub(overhead_mib);
        let want = limit.unsigned_abs().div_ceil(1 << 20);
        if want > room {
            return Err(SandboxError::Member(format!(
                "the memory limit of {want} MiB does not fit the pod's VM of {} MiB ({room} MiB for containers): size the pod (its sandbox's limits or io.kubernetes.cri.sandbox-memory)",
                self.mem_mib
            )));
        }
        Ok(())
    }

    /// The running sandbox `reference` names in `store`: by id, or the
    /// container whose pid it is; the owner of a member named so. `None`
    /// when a pid names no hull container.
    pub fn find(store: &StateStore, reference: &SandboxRef) -> Result<Option<Self>, SandboxError> {
        let state = match reference {
            SandboxRef::Id(id) => Some(store.load(id).map_err(|e| {
                SandboxError::Member(format!("the pod's sandbox container {id}: {e}"))
            })?),
            SandboxRef::HostPid(pid) => store
                .list()?
                .into_iter()
                .filter_map(|l| l.state.ok())
                .find(|s| s.pid == *pid && s.current_status() != ContainerStatus::Stopped),
        };
        let Some(mut state) = state else {
            return Ok(None);
        };
        if let Some(owner) = state.hull.pod_sandbox.clone() {
            state = store.load(&owner).map_err(|e| {
                SandboxError::Member(format!("the pod's sandbox container {owner}: {e}"))
            })?;
        }
        let status = state.current_status();
        if !matches!(status, ContainerStatus::Created | ContainerStatus::Running) {
            return Err(SandboxError::Member(format!(
                "the pod's sandbox container {} is {status}",
                state.id
            )));
        }
        let pod_socket = state.hull.pod_socket.clone().ok_or_else(|| {
            SandboxError::Member(format!("container {} takes no members", state.id))
        })?;
        Ok(Some(Self {
            id: state.id.clone(),
            pid: state.pid,
            vsock_socket: state.hull.vsock_socket.clone(),
            pod_socket,
            mem_mib: state.hull.mem_mib,
            cpus: state.hull.cpus,
        }))
    }
}

/// A member's hold on the owner's share: taken off on shutdown or drop.
#[derive(Debug)]
pub struct Membership {
    pod_socket: PathBuf,
    id: String,
    joined: bool,
    /// The member's own `linux.cgroupsPath` on the host (its process and
    /// stand-in are in it; what it uses is the owner's VM's).
    cgroup: super::HostCgroup,
}

impl Membership {
    /// Whether the member is still on the owner's share (not shut down).
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// Leaves the host cgroup for `hull delete` to remove.
    pub fn keep_cgroup(&mut self) {
        self.cgroup.kept = true;
    }

    /// Takes the member's container off the owner's share (once).
    pub fn leave(&mut self) -> Result<(), PodSocketError> {
        if !std::mem::take(&mut self.joined) {
            return Ok(());
        }
        pod_socket::request(
            &self.pod_socket,
            &PodRequest::Leave {
                id: self.id.clone(),
            },
            None,
        )
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let _ = self.leave();
    }
}

/// `config` for the guest: a namespace path into the owner's stand-in is
/// a join of the owner's container there.
pub fn guest_config(mut config: ContainerConfig, pod: &PodSandbox) -> ContainerConfig {
    if let Some(list) = config
        .spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.namespaces_mut().as_mut())
    {
        for ns in list.iter_mut() {
            if ns.path().as_deref().and_then(proc_ns_pid) == Some(pod.pid) {
                ns.set_path(Some(sibling_ns_path(&pod.id)));
            }
        }
    }
    config
}

/// How long a member that fails may wait for the agent to destroy its
/// container.
const DESTROY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Drop for Sandbox {
    /// A member dropped without its shutdown (an error after its container
    /// may have been made in the guest) destroys that container: the VM is
    /// not its to stop, and the container must not stay in it.
    fn drop(&mut self) {
        if matches!(&self.role, Role::Member(m) if m.is_joined()) {
            let mut control = self.lock_control();
            let _ = control.set_timeout(Some(DESTROY_TIMEOUT));
            let _ = control.destroy(&self.id);
        }
    }
}

impl Sandbox {
    /// Joins the VM of `pod` as container `config.id` of `bundle`, calling
    /// `prepared` once the state exists and the stand-in runs (the create
    /// hooks run there). Marks `agent_connect` in `timings`.
    pub fn join(
        config: &SandboxConfig,
        pod: &PodSandbox,
        bundle: &Bundle,
        timings: &mut Timings,
        prepared: &mut (dyn FnMut(&StateStore, &str) -> Result<(), String> + Send),
    ) -> Result<Self, SandboxError> {
        if !valid_id(&config.id) {
            return Err(SandboxError::InvalidId(config.id.clone()));
        }
        let state = StateDir::create(&config.state_root, &config.id)?;
        let store = StateStore::new(&config.state_root);
        let pid = std::process::id() as i32;
        let mut record = ContainerState::new(&config.id, bundle, pid, pod.vsock_socket.clone())?;
        record.hull.foreground = !config.detached;
        record.hull.pod_sandbox = Some(pod.id.clone());
        record.hull.pod_socket = Some(pod.pod_socket.clone());
        store.save(&record)?;
        store.save_spec(&config.id, &bundle.spec)?;
        let cgroup = super::HostCgroup::join(config, bundle, &store, pid)?;
        let trees = super::share::Trees::open(bundle)?;
        pod_socket::request(
            &pod.pod_socket,
            &PodRequest::Join {
                id: config.id.clone(),
                bundle: bundle.dir.clone(),
            },
            Some(&trees),
        )?;
        drop(trees);
        let membership = Membership {
            pod_socket: pod.pod_socket.clone(),
            id: config.id.clone(),
            joined: true,
            cgroup,
        };
        let host_netns = HostNetns::open()?;
        NetnsMode::of(&bundle.spec).enter()?;
        let standin = super::start_standin(config, bundle, &store, &record)?;
        host_netns
            .run_in(|| prepared(&store, &config.id))
            .map_err(SandboxError::Prepare)?;
        let (client, ready) = Client::connect(&pod.vsock_socket)?;
        timings.mark("agent_connect");
        Ok(Self {
            id: config.id.clone(),
            store,
            vsock_socket: pod.vsock_socket.clone(),
            ready,
            control: std::sync::Arc::new(std::sync::Mutex::new(client)),
            role: Role::Member(membership),
            state,
            power_off_timeout: config.power_off_timeout,
            standin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_into_the_owners_pid_become_joins_of_its_container() {
        let pod = PodSandbox {
            id: "pod".into(),
            pid: 42,
            vsock_socket: "/v".into(),
            pod_socket: "/p".into(),
            mem_mib: 256,
            cpus: 1,
        };
        let quota = |q: i64| crate::bundle::spec::LinuxResources {
            cpu: Some(crate::bundle::spec::resources::Cpu {
                quota: Some(q),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(pod.check_fits(Some(&quota(100_000)), 48).is_ok());
        assert!(pod.check_fits(Some(&quota(150_000)), 48).is_err());
        let limit = |mib: i64| crate::bundle::spec::LinuxResources {
            memory: Some(crate::bundle::spec::resources::Memory {
                limit: Some(mib << 20),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(pod.check_fits(Some(&limit(200)), 48).is_ok());
        assert!(pod.check_fits(Some(&limit(209)), 48).is_err());
        assert!(pod.check_fits(None, 48).is_ok());
        let spec = serde_json::json!({"ociVersion": "1.0.2", "linux": {"namespaces": [
            {"type": "ipc", "path": "/proc/42/ns/ipc"},
            {"type": "uts", "path": "/proc/43/ns/uts"},
            {"type": "network", "path": "/var/run/netns/cni-1"},
            {"type": "pid"},
        ]}});
        let config = ContainerConfig {
            spec: serde_json::from_value(spec).unwrap(),
            resources: None,
        };
        let out = guest_config(config, &pod);
        let paths: Vec<Option<String>> = out
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap()
            .iter()
            .map(|n| n.path().as_ref().map(|p| p.display().to_string()))
            .collect();
        assert_eq!(
            paths,
            [
                Some("/run/hull/containers/pod".into()),
                Some("/proc/43/ns/uts".into()),
                Some("/var/run/netns/cni-1".into()),
                None
            ]
        );
    }
}
