//! The sandbox: one microVM running a container, owned by this process.
//!
//! [`Sandbox::boot`] claims the state directory `<state_root>/<id>`, moves
//! the calling thread into a private mount namespace, binds the bundle's
//! rootfs and bind-mount sources into the share, starts `hull-vmm` with the
//! share over virtio-fs and a hybrid vsock socket, waits for the agent's
//! ready event (from hull-vmm's control channel) and says hello on a control
//! connection. From there the caller drives the container through
//! [`Sandbox::control`] (or more connections from [`Sandbox::connect`]) and
//! its stdio through [`Sandbox::attach`].
//! [`Sandbox::shutdown`] powers the VM off and cleans up; dropping a
//! sandbox instead kills the VM and cleans up the same way.
//!
//! [`run::run`] is the whole `hull run` flow on top of it.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use agent_protocol::container::{valid_id, Stream};
use agent_protocol::wire::ReadyInfo;

use crate::bundle::Bundle;
use crate::host::cgroups::{devices, Cgroup, CgroupError};
use crate::process::standin::{Standin, StandinNamespaces};
use crate::state::{ContainerState, ContainerStatus, StateError, StateStore};

pub mod artifacts;
pub mod client;
pub mod console;
pub mod exec;
pub mod member;
pub mod network;
pub mod pod_socket;
pub mod pump;
pub mod run;
pub mod share;
pub mod signals;
pub mod state_dir;
pub mod stdio;
pub mod timings;
pub mod tty;
pub mod vmm;
pub mod vsock;

pub use artifacts::Artifacts;
pub use client::{Client, ClientError};
pub use timings::Timings;

use console::Console;
use network::{NetnsMode, SandboxNetwork};
use pod_socket::{PodServer, PodSocketError};
use share::{Share, ShareError};
use state_dir::{StateDir, StateDirError};
use stdio::StdioError;
use vmm::{Vmm, VmmConfig, VmmError, VmmKiller};

/// Default guest memory.
pub const DEFAULT_MEM_MIB: u32 = 256;
/// Default vCPUs.
pub const DEFAULT_CPUS: u32 = 1;
/// How long the guest's agent may take to report ready. Generous: nested
/// and emulated KVM (CI's test host) are 10–30× slower than hardware.
pub const DEFAULT_BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a VM whose agent connection broke may take to exit on its own
/// before it is taken for alive and stopped.
pub const VM_EXIT_GRACE: Duration = Duration::from_secs(5);

/// Longest Unix socket path (`sun_path` holds 108 bytes with the NUL).
pub const MAX_SOCKET_PATH_BYTES: usize = 107;

/// How long a powered-off VM may take to exit before it is killed.
pub const POWER_OFF_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("invalid container id {0:?}: use 1 to 128 of [A-Za-z0-9_.-], not starting with a dot")]
    InvalidId(String),
    #[error("the VM's socket path {0} is too long for a Unix socket (at most {MAX_SOCKET_PATH_BYTES} bytes): use a shorter state root or id")]
    SocketPathTooLong(PathBuf),
    #[error(transparent)]
    StateDir(#[from] StateDirError),
    #[error("cannot record the container's state: {0}")]
    State(#[from] StateError),
    #[error("cannot share the bundle with the VM: {0}")]
    Share(#[from] ShareError),
    #[error("cannot open the console log: {0}")]
    ConsoleLog(std::io::Error),
    #[error(transparent)]
    Vmm(#[from] VmmError),
    #[error(transparent)]
    Agent(#[from] ClientError),
    #[error(transparent)]
    Stdio(#[from] StdioError),
    #[error("sandbox VM exited unexpectedly ({status})\n{tail}")]
    VmExited { status: ExitStatus, tail: String },
    #[error("lost the connection to the agent, VM stopped: {error}\n{tail}")]
    AgentLost { error: ClientError, tail: String },
    #[error("cannot join linux.cgroupsPath: {0}")]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Network(#[from] network::NetworkSetupError),
    #[error("{0}")]
    Prepare(String),
    #[error(transparent)]
    Standin(#[from] crate::process::standin::StandinError),
    #[error(transparent)]
    Pod(#[from] PodSocketError),
    #[error("{0}")]
    Member(String),
}

/// What a sandbox is made of.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The sandbox's id (for `hull run`, the container's).
    pub id: String,
    /// Parent of the state directory (`/run/hull` for `hull run`).
    pub state_root: PathBuf,
    pub artifacts: Artifacts,
    pub mem_mib: u32,
    pub cpus: u32,
    pub boot_timeout: Duration,
    /// How long a powered-off VM may take to exit before it is killed.
    pub power_off_timeout: Duration,
    /// Started by `hull create` (else `hull run` drives it to the end and
    /// no other command may start it).
    pub detached: bool,
    /// `--systemd-cgroup`: `linux.cgroupsPath` is `slice:prefix:name`.
    pub systemd_cgroup: bool,
    /// The `hull` executable to start the container's stand-in from (see
    /// [`crate::process::standin`]); `None`: this process is the
    /// container's pid (`hull run`).
    pub standin: Option<PathBuf>,
}

impl SandboxConfig {
    /// Defaults for everything but the id and the artifacts.
    pub fn new(id: impl Into<String>, artifacts: Artifacts) -> Self {
        Self {
            id: id.into(),
            state_root: state_dir::DEFAULT_STATE_ROOT.into(),
            artifacts,
            mem_mib: DEFAULT_MEM_MIB,
            cpus: DEFAULT_CPUS,
            boot_timeout: DEFAULT_BOOT_TIMEOUT,
            power_off_timeout: POWER_OFF_TIMEOUT,
            detached: false,
            systemd_cgroup: false,
            standin: None,
        }
    }
}

/// A booted sandbox VM with its agent connected: this process's own VM, or
/// (a pod's app container) another sandbox's that it joined. Fields drop in
/// order: the control connection, then the VM's parts (see [`Owned`]), the
/// state directory, the stand-in.
#[derive(Debug)]
pub struct Sandbox {
    id: String,
    store: StateStore,
    vsock_socket: PathBuf,
    ready: ReadyInfo,
    control: Arc<Mutex<Client>>,
    role: Role,
    state: StateDir,
    power_off_timeout: Duration,
    standin: Option<Standin>,
}

/// Whether this process owns the VM or joined another sandbox's.
#[derive(Debug)]
enum Role {
    Owner(Box<Owned>),
    Member(member::Membership),
}

/// What an owner has, dropped in order: the pod socket, the VM (killed
/// and reaped), the network wiring, the share's binds, the host cgroup,
/// the vsock socket file.
#[derive(Debug)]
struct Owned {
    /// Dropped first on shutdown: no member joins a VM going away.
    pod: Option<PodServer>,
    vmm: Vmm,
    network: SandboxNetwork,
    share: Arc<Mutex<Share>>,
    cgroup: HostCgroup,
    _socket: SocketFile,
}

/// The VM's socket file, removed when the sandbox goes (the VM is gone by
/// then).
#[derive(Debug)]
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Where short socket paths go when the state directory's is too long.
pub const SOCKET_DIR: &str = "/run/hull-vsock";

/// The VM's hybrid vsock socket: `<root>/<id>/vsock.sock` when that fits in
/// a Unix socket address with room for the `_<port>` suffix, else
/// `/run/hull-vsock/<hash of root and id>.sock` (Docker's state roots with
/// 64-character ids are too long).
pub fn vsock_socket_path(root: &Path, id: &str) -> PathBuf {
    socket_path(root, id, state_dir::VSOCK_SOCKET)
}

/// `<root>/<id>/<name>` when that fits in a Unix socket address with room
/// for a `_<port>` suffix, else `/run/hull-vsock/<hash of root, id and
/// name>.sock`.
pub fn socket_path(root: &Path, id: &str, name: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let natural = root.join(id).join(name);
    if natural.as_os_str().len() + 6 <= MAX_SOCKET_PATH_BYTES {
        return natural;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    natural.hash(&mut h);
    Path::new(SOCKET_DIR).join(format!("{:016x}.sock", h.finish()))
}

/// The pod socket of sandbox `id` (see [`pod_socket`]).
pub fn pod_socket_path(root: &Path, id: &str) -> PathBuf {
    socket_path(root, id, POD_SOCKET)
}

/// The pod socket's file name in the state directory.
pub const POD_SOCKET: &str = "pod.sock";

/// The host cgroup the sandbox process joined: left again (and what the join
/// created removed) if the sandbox goes away before it is kept.
#[derive(Debug, Default)]
struct HostCgroup {
    joined: Option<Cgroup>,
    kept: bool,
}

impl HostCgroup {
    /// Moves process `pid` into the spec's `linux.cgroupsPath` (if any) and
    /// records the directories in the container's state.
    fn join(
        config: &SandboxConfig,
        bundle: &Bundle,
        store: &StateStore,
        pid: i32,
    ) -> Result<Self, SandboxError> {
        let mut cgroup = HostCgroup::default();
        let linux = bundle.spec.linux().as_ref();
        let cgroups_path = linux.and_then(|l| l.cgroups_path().as_deref());
        if let Some(path) = cgroups_path.and_then(|p| p.to_str()) {
            // Only root loads programs; a rootless runtime goes unfiltered.
            let devices = match nix::unistd::geteuid().is_root() {
                true => Some(
                    devices::host_program().map_err(|source| CgroupError::Devices {
                        path: path.into(),
                        source,
                    })?,
                ),
                false => None,
            };
            let joined = Cgroup::join(
                Some(path),
                &config.id,
                config.systemd_cgroup,
                pid,
                devices.as_deref(),
            )?;
            let paths = joined.paths().to_vec();
            cgroup.joined = Some(joined);
            store.update(&config.id, |s| {
                s.hull.cgroups = paths;
                Ok(())
            })?;
        }
        Ok(cgroup)
    }
}

impl Drop for HostCgroup {
    fn drop(&mut self) {
        if let (Some(cg), false) = (self.joined.take(), self.kept) {
            cg.leave(std::process::id() as i32);
        }
    }
}

impl Sandbox {
    /// Sets everything up for `config.id` with `bundle` as its container,
    /// boots the VM and says hello. Marks `vm_boot` and `agent_connect` in
    /// `timings` (`sandbox_setup` before them). Call from the thread that
    /// will drive the sandbox until the end (the VMM is tied to it).
    pub fn boot(
        config: &SandboxConfig,
        bundle: &Bundle,
        timings: &mut Timings,
    ) -> Result<Self, SandboxError> {
        Self::boot_with(config, bundle, timings, &mut |_, _| Ok(()), |_| {})
    }

    /// [`Sandbox::boot`], calling `prepared` once the state exists and the
    /// network namespace is entered, before the network is wired and the VM
    /// starts (the spec's `prestart` and `createRuntime` hooks run there:
    /// Docker's adds the veth), and handing `on_spawn` a killer for the VM
    /// as soon as it runs (to abort the boot from another thread).
    pub fn boot_with(
        config: &SandboxConfig,
        bundle: &Bundle,
        timings: &mut Timings,
        prepared: &mut (dyn FnMut(&StateStore, &str) -> Result<(), String> + Send),
        on_spawn: impl FnOnce(VmmKiller),
    ) -> Result<Self, SandboxError> {
        if !valid_id(&config.id) {
            return Err(SandboxError::InvalidId(config.id.clone()));
        }
        let socket = vsock_socket_path(&config.state_root, &config.id);
        if socket.as_os_str().len() > MAX_SOCKET_PATH_BYTES {
            return Err(SandboxError::SocketPathTooLong(socket));
        }
        let state = StateDir::create(&config.state_root, &config.id)?;
        let socket_guard = SocketFile(socket.clone());
        if let Some(dir) = socket.parent().filter(|d| !d.starts_with(state.path())) {
            std::fs::create_dir_all(dir).map_err(|source| StateDirError::Create {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        // This process is the sandbox: `hull state`/`hull list` see the
        // container as long as it lives.
        let store = StateStore::new(&config.state_root);
        let pid = std::process::id() as i32;
        let mut record = ContainerState::new(&config.id, bundle, pid, socket.clone())?;
        record.hull.foreground = !config.detached;
        store.save(&record)?;
        store.save_spec(&config.id, &bundle.spec)?;
        let cgroup = HostCgroup::join(config, bundle, &store, pid)?;
        // The VMM, spawned from this thread, is then in the namespace too.
        let netns = NetnsMode::of(&bundle.spec);
        let host_netns = network::HostNetns::open()?;
        netns.enter()?;
        // The container's pid from here on: in its network namespace, and
        // in the runtime's mount namespace unless it gets its own.
        let standin = start_standin(config, bundle, &store, &record)?;
        // The hooks run in the runtime's own network namespace, as runc's
        // do (Docker's asks dockerd to move the veth; others act by hand).
        host_netns
            .run_in(|| prepared(&store, &config.id))
            .map_err(SandboxError::Prepare)?;
        let network = SandboxNetwork::wire(netns)?;
        let (wired, reserved) = (network.wired_links(), network.reserved_tap());
        if !wired.is_empty() || reserved.is_some() {
            store.update(&config.id, |s| {
                s.hull.wired_links = wired;
                s.hull.reserved_nic = reserved;
                Ok(())
            })?;
        }
        share::enter_private_mount_namespace()?;
        let mut share = Share::create(state.share())?;
        share.add_container(&config.id, bundle, None)?;
        let share = Arc::new(Mutex::new(share));
        let pod_socket = pod_socket_path(&config.state_root, &config.id);
        let pod = PodServer::start(
            pod_socket.clone(),
            config.id.clone(),
            store.clone(),
            share.clone(),
        )?;
        store.update(&config.id, |s| {
            s.hull.pod_socket = Some(pod_socket);
            Ok(())
        })?;
        let log = std::fs::File::create(state.console_log()).map_err(SandboxError::ConsoleLog)?;
        let vmm_config = VmmConfig {
            artifacts: config.artifacts.clone(),
            mem_mib: config.mem_mib,
            cpus: config.cpus,
            share_dir: state.share(),
            vsock_socket: socket,
            nics: network.nics(),
        };
        timings.mark("sandbox_setup");
        let mut vmm = Vmm::spawn(&vmm_config, Console::new(Some(log)))?;
        on_spawn(vmm.killer());
        let vmm_pid = vmm.pid();
        let start = crate::state::proc::ProcStat::read(vmm_pid)
            .ok()
            .flatten()
            .map_or(0, |s| s.start_time);
        store.update(&config.id, |s| {
            s.hull.vmm_pid = vmm_pid;
            s.hull.vmm_start_time = start;
            s.hull.mem_mib = config.mem_mib;
            s.hull.cpus = config.cpus;
            Ok(())
        })?;
        let booted = vmm.wait_ready(config.boot_timeout)?;
        timings.mark_at("vm_boot", booted.agent_ready_ns);
        let (mut client, ready) = match Client::connect(&vmm_config.vsock_socket) {
            Ok(c) => c,
            Err(e) => return Err(lost(&mut vmm, e)),
        };
        timings.mark("agent_connect");
        if let Some(guest) = network.guest_config() {
            if let Err(e) = client.configure_network(&guest) {
                return Err(lost(&mut vmm, e));
            }
            timings.mark("network_config");
        }
        Ok(Self {
            id: config.id.clone(),
            store,
            vsock_socket: vmm_config.vsock_socket,
            ready,
            control: Arc::new(Mutex::new(client)),
            role: Role::Owner(Box::new(Owned {
                pod: Some(pod),
                vmm,
                network,
                share,
                cgroup,
                _socket: socket_guard,
            })),
            state,
            power_off_timeout: config.power_off_timeout,
            standin,
        })
    }

    /// The container's stand-in, if this sandbox started one: whoever
    /// takes it lets it go when the workload has ended.
    pub fn take_standin(&mut self) -> Option<Standin> {
        self.standin.take()
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// Records the container's new status in its `state.json`.
    pub fn set_status(&self, status: ContainerStatus) -> Result<(), SandboxError> {
        self.store.set_status(&self.id, status)?;
        Ok(())
    }

    /// Keeps the state directory (with `state.json` and the console log)
    /// after shutdown or drop, for `hull delete` to remove.
    pub fn keep_state(&mut self) {
        self.state.keep();
        match &mut self.role {
            Role::Owner(owned) => owned.cgroup.kept = true,
            Role::Member(membership) => membership.keep_cgroup(),
        }
    }

    /// The state store the sandbox records its status in.
    pub fn store(&self) -> &StateStore {
        &self.store
    }

    /// What the agent reported in its hello.
    pub fn ready(&self) -> &ReadyInfo {
        &self.ready
    }

    /// The shared control connection.
    pub fn control(&self) -> Arc<Mutex<Client>> {
        self.control.clone()
    }

    /// Locks the shared control connection (a poisoned lock is still usable:
    /// a call either completed or the connection errors).
    pub fn lock_control(&self) -> MutexGuard<'_, Client> {
        self.control.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new control connection (hello done), e.g. for a blocking wait.
    pub fn connect(&mut self) -> Result<Client, SandboxError> {
        Client::connect(&self.vsock_socket)
            .map(|(c, _)| c)
            .map_err(|e| self.explain(e))
    }

    /// Opens a stdio stream of a process (init when `exec_id` is `None`).
    pub fn attach(
        &mut self,
        container_id: &str,
        exec_id: Option<&str>,
        stream: Stream,
    ) -> Result<UnixStream, SandboxError> {
        stdio::attach(&self.vsock_socket, container_id, exec_id, stream).map_err(|e| {
            let Role::Owner(owned) = &mut self.role else {
                return e.into();
            };
            match owned.vmm.try_exit() {
                Some(status) => SandboxError::VmExited {
                    status,
                    tail: owned.vmm.console_tail(),
                },
                None => e.into(),
            }
        })
    }

    /// Turns an agent error into the better explanation when the VM or the
    /// connection is gone: [`SandboxError::VmExited`] with the console tail
    /// when the VM died; when only the connection died, the VM is stopped
    /// (it cannot be driven any more) and [`SandboxError::AgentLost`] says so.
    pub fn explain(&mut self, error: ClientError) -> SandboxError {
        match &mut self.role {
            Role::Owner(owned) => lost(&mut owned.vmm, error),
            Role::Member(_) => SandboxError::Agent(error),
        }
    }

    /// An owner powers the VM off through the agent (killing it if that
    /// fails), waits for hull-vmm to exit, unmounts the share; a member
    /// takes its container off the pod's share. Then the state directory
    /// goes. Returns hull-vmm's exit status (`None` for a member).
    pub fn shutdown(mut self) -> Result<Option<ExitStatus>, SandboxError> {
        if let Role::Owner(owned) = &mut self.role {
            owned.pod = None;
        }
        let power_off =
            matches!(self.role, Role::Owner(_)) && self.lock_control().power_off().is_ok();
        let status = match &mut self.role {
            Role::Owner(owned) => {
                if !power_off {
                    owned.vmm.killer().kill();
                }
                let status = owned.vmm.wait_exit_or_kill(self.power_off_timeout);
                owned.network.teardown()?;
                owned
                    .share
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .teardown()?;
                Some(status)
            }
            Role::Member(membership) => {
                membership.leave()?;
                None
            }
        };
        self.state.remove()?;
        Ok(status)
    }
}

/// Starts the container's stand-in when `config` asks for one (in the
/// calling thread's network namespace) and makes it the container's pid in
/// `record`'s stored state, the sandbox process (`record.pid`) beside it.
fn start_standin(
    config: &SandboxConfig,
    bundle: &Bundle,
    store: &StateStore,
    record: &ContainerState,
) -> Result<Option<Standin>, SandboxError> {
    let Some(exe) = &config.standin else {
        return Ok(None);
    };
    let standin = Standin::spawn(exe, &StandinNamespaces::of(&bundle.spec))?;
    store.update(&config.id, |s| {
        s.pid = standin.pid();
        s.hull.pid_start_time = standin.start_time();
        s.hull.sandbox_pid = record.pid;
        s.hull.sandbox_start_time = record.hull.pid_start_time;
        Ok(())
    })?;
    Ok(Some(standin))
}

fn lost(vmm: &mut Vmm, error: ClientError) -> SandboxError {
    if !error.is_disconnect() && vmm.try_exit().is_none() {
        return SandboxError::Agent(error);
    }
    // A dying VM closes its connections a moment before it exits: give it
    // that moment, and stop it only if it stays up without its agent.
    match vmm.wait_exit_within(VM_EXIT_GRACE) {
        Some(status) => SandboxError::VmExited {
            status,
            tail: vmm.console_tail(),
        },
        None => {
            vmm.killer().kill();
            vmm.wait_exit();
            SandboxError::AgentLost {
                error,
                tail: vmm.console_tail(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn bundle(dir: &TempDir) -> Bundle {
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        let spec =
            crate::bundle::spec::parse(br#"{"process":{"args":["x"]},"root":{"path":"rootfs"}}"#)
                .unwrap()
                .spec;
        Bundle::from_spec(dir.path().to_path_buf(), spec).unwrap()
    }

    fn config(root: PathBuf, id: &str) -> SandboxConfig {
        let artifacts = Artifacts {
            vmm: "/nonexistent/hull-vmm".into(),
            kernel: "/k".into(),
            initrd: "/i".into(),
        };
        let mut c = SandboxConfig::new(id, artifacts);
        c.state_root = root;
        c
    }

    #[test]
    fn bad_ids_are_refused_before_anything_is_made() {
        let dir = TempDir::new("sandbox");
        let b = bundle(&dir);
        let root = dir.path().join("state");
        let e = Sandbox::boot(&config(root.clone(), "../x"), &b, &mut Timings::new()).unwrap_err();
        assert!(matches!(e, SandboxError::InvalidId(_)), "{e}");
        assert!(!root.exists());
    }

    #[test]
    fn long_state_paths_get_a_short_socket() {
        let short = vsock_socket_path(Path::new("/run/hull"), "c1");
        assert_eq!(short, Path::new("/run/hull/c1/vsock.sock"));
        // Docker's root and a 64-character id.
        let root = Path::new("/var/run/docker/runtime-runc/moby");
        let id = "a".repeat(64);
        let p = vsock_socket_path(root, &id);
        assert!(p.starts_with(SOCKET_DIR), "{}", p.display());
        assert!(p.as_os_str().len() + 6 <= MAX_SOCKET_PATH_BYTES);
        assert_eq!(p, vsock_socket_path(root, &id), "not stable");
        assert_ne!(p, vsock_socket_path(root, &"b".repeat(64)));
    }

    #[test]
    fn a_vmm_that_cannot_start_leaves_nothing_behind() {
        let dir = TempDir::new("sandbox-nostart");
        let b = bundle(&dir);
        let root = dir.path().join("state");
        let e = Sandbox::boot(&config(root.clone(), "c1"), &b, &mut Timings::new()).unwrap_err();
        // Without CAP_SYS_ADMIN it fails earlier, at the mount namespace.
        let text = e.to_string();
        assert!(
            text.contains("/nonexistent/hull-vmm") || text.contains("mount namespace"),
            "{text}"
        );
        assert!(!root.join("c1").exists(), "state directory left behind");
    }
}
