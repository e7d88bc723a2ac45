//! Containers in the guest: the registry of containers and their processes,
//! and the handling of the control channel's container requests.

pub mod cgroup;
pub mod process;
pub mod resources;
pub mod spawn;
pub mod sync;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::sync::{Arc, Mutex, MutexGuard};

use agent_protocol::container::{
    valid_id, ContainerConfig, ExitStatus, LinuxNamespaceType, Process, Resources, Stream,
};
use agent_protocol::wire::{ErrorCode, Response, StreamHello};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

use process::{Phase, Proc, ProcError};
use sync::InitRequest;

struct Container {
    config: ContainerConfig,
    seccomp: Option<crate::seccomp::Program>,
    cgroup: String,
    init: Arc<Proc>,
    execs: HashMap<String, Arc<Proc>>,
}

#[derive(Default)]
struct Inner {
    containers: HashMap<String, Container>,
    /// Ids being created right now.
    creating: HashSet<String>,
    pids: HashMap<i32, Arc<Proc>>,
    /// Pids announced by a helper but not registered yet, with their exit
    /// if it came first. Exits of other pids (helpers, orphans) are ignored.
    expected: HashMap<i32, Option<ExitStatus>>,
}

/// Every container of this guest.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

fn err(code: ErrorCode, message: impl Into<String>) -> Response {
    Response::error(code, message)
}

fn proc_err(e: ProcError) -> Response {
    let code = match e {
        ProcError::NotCreated | ProcError::NotAttached(_) => ErrorCode::InvalidState,
        ProcError::ExecFailed(_) => ErrorCode::CreateFailed,
        ProcError::UnexpectedStream(_) | ProcError::NoTerminal => ErrorCode::BadRequest,
        ProcError::Io { .. } => ErrorCode::Internal,
    };
    err(code, e.to_string())
}

/// Writes `resources` into the container's cgroup (`""` when the guest has
/// no cgroup2: then limits cannot be applied). The error code is
/// `bad_request` for a value out of range, `internal` otherwise.
fn apply_resources(cgroup: &str, resources: &Resources) -> Result<(), (ErrorCode, String)> {
    if cgroup.is_empty() {
        return Err((
            ErrorCode::Internal,
            "cannot apply resource limits: the guest has no cgroup2".into(),
        ));
    }
    resources::apply(std::path::Path::new(cgroup), resources).map_err(|e| {
        let code = match e {
            resources::ResourcesError::Range { .. } => ErrorCode::BadRequest,
            resources::ResourcesError::Write { .. } => ErrorCode::Internal,
        };
        (code, format!("resource limits: {e}"))
    })
}

/// What the agent compiles from the spec before the container's processes
/// exist: the seccomp filter (installed by each process on itself) and the
/// device cgroup program (attached to the container's cgroup).
struct Guards {
    seccomp: Option<crate::seccomp::Program>,
    devices: Vec<crate::devices::BpfInsn>,
}

impl Guards {
    fn compile(config: &ContainerConfig) -> Result<Self, String> {
        let linux = config.linux();
        let seccomp = linux
            .seccomp()
            .as_ref()
            .map(crate::seccomp::compile)
            .transpose()
            .map_err(|e| format!("linux.seccomp: {e}"))?;
        let spec_rules = linux
            .resources()
            .as_ref()
            .and_then(|r| r.devices().clone())
            .unwrap_or_default();
        let (_, rules) = crate::devices::with_runc_defaults(&[], &spec_rules);
        let devices =
            crate::devices::compile(&rules).map_err(|e| format!("linux.resources.devices: {e}"))?;
        Ok(Self { seccomp, devices })
    }

    /// Attaches the device program (default-deny, as runc) to `cgroup`.
    fn attach_devices(&self, cgroup: &str) -> Result<(), String> {
        if cgroup.is_empty() {
            return Err(
                "linux.resources.devices: the guest has no cgroup2 to enforce device rules".into(),
            );
        }
        crate::devices::attach(std::path::Path::new(cgroup), &self.devices)
            .map_err(|e| format!("linux.resources.devices: {e}"))
    }
}

/// A wait status as the pid and [`ExitStatus`] of an ended process (None
/// for a process that only stopped or continued).
pub fn exit_status(status: WaitStatus) -> Option<(i32, ExitStatus)> {
    match status {
        WaitStatus::Exited(pid, code) => Some((pid.as_raw(), ExitStatus::Code(code))),
        WaitStatus::Signaled(pid, signal, _) => {
            Some((pid.as_raw(), ExitStatus::Signal(signal as i32)))
        }
        _ => None,
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From the reaper: a child exited.
    pub fn on_exit(&self, status: WaitStatus) {
        let Some((pid, status)) = exit_status(status) else {
            return;
        };
        let proc = {
            let mut inner = self.lock();
            match inner.pids.remove(&pid) {
                Some(p) => p,
                None => {
                    if let Some(slot) = inner.expected.get_mut(&pid) {
                        *slot = Some(status);
                    }
                    return;
                }
            }
        };
        proc.exited(status);
    }

    fn expect(&self, pid: i32) {
        self.lock().expected.insert(pid, None);
    }

    /// Registers a new process, applying an exit that already happened.
    fn register(&self, proc: &Arc<Proc>) {
        let mut inner = self.lock();
        if let Some(Some(status)) = inner.expected.remove(&proc.pid) {
            drop(inner);
            proc.exited(status);
            return;
        }
        inner.pids.insert(proc.pid, proc.clone());
    }

    fn find(&self, id: &str, exec_id: Option<&str>) -> Result<Arc<Proc>, Response> {
        let inner = self.lock();
        let c = inner.containers.get(id).ok_or_else(|| {
            err(
                ErrorCode::NotFound,
                format!("container {id} does not exist"),
            )
        })?;
        match exec_id {
            None => Ok(c.init.clone()),
            Some(e) => c.execs.get(e).cloned().ok_or_else(|| {
                err(
                    ErrorCode::NotFound,
                    format!("process {e} of container {id} does not exist"),
                )
            }),
        }
    }

    pub fn create(&self, id: &str, config: ContainerConfig, stdin: bool) -> Response {
        if !valid_id(id) {
            return err(
                ErrorCode::BadRequest,
                format!("invalid container id {id:?}"),
            );
        }
        let Some(process) = config.process().cloned() else {
            return err(ErrorCode::BadRequest, "the spec has no process");
        };
        if process.args().as_ref().is_none_or(|a| a.is_empty()) {
            return err(ErrorCode::BadRequest, "process.args is empty");
        }
        {
            let mut inner = self.lock();
            if inner.containers.contains_key(id) || !inner.creating.insert(id.to_string()) {
                return err(
                    ErrorCode::AlreadyExists,
                    format!("container {id} already exists"),
                );
            }
        }
        let guards = match Guards::compile(&config) {
            Ok(g) => g,
            Err(message) => {
                self.lock().creating.remove(id);
                return err(ErrorCode::CreateFailed, message);
            }
        };
        let peer = match self.peer_of(&config) {
            Ok(p) => p,
            Err(message) => {
                self.lock().creating.remove(id);
                return err(ErrorCode::CreateFailed, message);
            }
        };
        let cgroup = cgroup::create(id);
        if let Some(resources) = config.resources.as_ref().filter(|r| !r.is_empty()) {
            if let Err((_, message)) = apply_resources(&cgroup, resources) {
                cgroup::remove(&cgroup);
                self.lock().creating.remove(id);
                return err(ErrorCode::CreateFailed, message);
            }
        }
        let request = InitRequest {
            process,
            container: Some(config.clone()),
            cgroup: cgroup.clone(),
            join: None,
            peer,
            seccomp: guards.seccomp.clone(),
        };
        // The device program goes on once the init has made its nodes
        // (they would be checked against it), before it may start.
        let result =
            self.spawn(&request, stdin)
                .and_then(|init| match guards.attach_devices(&cgroup) {
                    Ok(()) => Ok(init),
                    Err(message) => {
                        // Its sync socket closes: the init exits unstarted.
                        drop(init);
                        Err(err(ErrorCode::CreateFailed, message))
                    }
                });
        let mut inner = self.lock();
        inner.creating.remove(id);
        match result {
            Ok(init) => {
                let pid = init.pid;
                inner.containers.insert(
                    id.to_string(),
                    Container {
                        config,
                        seccomp: guards.seccomp,
                        cgroup,
                        init,
                        execs: HashMap::new(),
                    },
                );
                Response::Created { pid }
            }
            Err(e) => {
                cgroup::remove(&cgroup);
                e
            }
        }
    }

    fn spawn(&self, request: &InitRequest, stdin: bool) -> Result<Arc<Proc>, Response> {
        let mut announced = None;
        let spawned = spawn::spawn(request, stdin, |pid| {
            self.expect(pid);
            announced = Some(pid);
        });
        let (pid, ends, sync) = match spawned {
            Ok(s) => s,
            Err(e) => {
                if let Some(pid) = announced {
                    self.lock().expected.remove(&pid);
                }
                return Err(err(ErrorCode::CreateFailed, e.to_string()));
            }
        };
        let streams = Stream::for_process(request.process.terminal().unwrap_or(false), stdin);
        let proc = Proc::new(pid, ends, streams, sync)
            .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
        self.register(&proc);
        Ok(proc)
    }

    pub fn exec(&self, id: &str, exec_id: &str, process: Process, stdin: bool) -> Response {
        if !valid_id(exec_id) {
            return err(
                ErrorCode::BadRequest,
                format!("invalid exec id {exec_id:?}"),
            );
        }
        let (init_pid, namespaces, cgroup, seccomp) = {
            let inner = self.lock();
            let Some(c) = inner.containers.get(id) else {
                return err(
                    ErrorCode::NotFound,
                    format!("container {id} does not exist"),
                );
            };
            // The init's process exists from `create` on (waiting for the
            // start byte in the container's namespaces), so an exec may join
            // it before `start`, as with runc.
            if !matches!(c.init.phase(), Phase::Created | Phase::Running) {
                return err(
                    ErrorCode::InvalidState,
                    format!("container {id} is not running"),
                );
            }
            if c.execs.contains_key(exec_id) {
                return err(
                    ErrorCode::AlreadyExists,
                    format!("process {exec_id} already exists"),
                );
            }
            let ns: Vec<LinuxNamespaceType> = c.config.namespaces();
            (c.init.pid, ns, c.cgroup.clone(), c.seccomp.clone())
        };
        let request = InitRequest {
            container: None,
            process,
            cgroup,
            join: Some((init_pid, namespaces)),
            peer: None,
            seccomp,
        };
        match self.spawn(&request, stdin) {
            Ok(proc) => {
                let pid = proc.pid;
                let mut inner = self.lock();
                match inner.containers.get_mut(id) {
                    Some(c) => {
                        c.execs.insert(exec_id.to_string(), proc);
                        Response::Created { pid }
                    }
                    None => err(ErrorCode::NotFound, format!("container {id} went away")),
                }
            }
            Err(e) => e,
        }
    }

    /// The init pid of the sibling `config` joins namespaces of, and
    /// which; the mount namespace is the container's own (its root is).
    fn peer_of(
        &self,
        config: &ContainerConfig,
    ) -> Result<Option<(i32, Vec<LinuxNamespaceType>)>, String> {
        let Some((sibling, types)) = config.joined()? else {
            return Ok(None);
        };
        if types.contains(&LinuxNamespaceType::Mount) {
            return Err(format!(
                "joining the mount namespace of container {sibling} is not supported: each container of a pod has its own root"
            ));
        }
        let inner = self.lock();
        match inner.containers.get(&sibling) {
            Some(c) if matches!(c.init.phase(), Phase::Created | Phase::Running) => {
                Ok(Some((c.init.pid, types)))
            }
            Some(_) => Err(format!("container {sibling} has exited")),
            None => Err(format!("container {sibling} is not in this VM")),
        }
    }

    pub fn attach(&self, hello: &StreamHello, conn: File) -> Response {
        match self.find(&hello.container_id, hello.exec_id.as_deref()) {
            Ok(proc) => match proc.attach(hello.stream, conn) {
                Ok(()) => Response::Ok,
                Err(e) => proc_err(e),
            },
            Err(e) => e,
        }
    }

    pub fn start(&self, id: &str, exec_id: Option<&str>) -> Response {
        match self.find(id, exec_id) {
            Ok(proc) => match proc.start() {
                Ok(()) => Response::Ok,
                Err(e) => proc_err(e),
            },
            Err(e) => e,
        }
    }

    pub fn wait(&self, id: &str, exec_id: Option<&str>) -> Response {
        match self.find(id, exec_id) {
            Ok(proc) => {
                let status = proc.wait();
                // An exec'd process is forgotten once its exit was collected
                // (its pty and connections go with it); init stays until
                // destroy.
                if let Some(exec_id) = exec_id {
                    if let Some(c) = self.lock().containers.get_mut(id) {
                        c.execs.remove(exec_id);
                    }
                }
                Response::Exited { status }
            }
            Err(e) => e,
        }
    }

    pub fn signal(&self, id: &str, exec_id: Option<&str>, signal: i32, all: bool) -> Response {
        if !(1..=64).contains(&signal) {
            return err(ErrorCode::BadRequest, format!("invalid signal {signal}"));
        }
        let proc = match self.find(id, exec_id) {
            Ok(p) => p,
            Err(e) => return e,
        };
        if all {
            let cgroup = self.lock().containers.get(id).map(|c| c.cgroup.clone());
            if let Some(cg) = cgroup.filter(|c| !c.is_empty()) {
                cgroup::signal_all(&cg, signal);
                return Response::Ok;
            }
        }
        if matches!(proc.phase(), Phase::Exited(_)) {
            return err(ErrorCode::InvalidState, "process already exited");
        }
        // SAFETY: kill has no memory effects. Raw libc: any signal number
        // may come (nix's kill takes only its Signal enum, without the
        // real-time signals).
        if unsafe { libc::kill(proc.pid, signal) } < 0 {
            return err(
                ErrorCode::Internal,
                std::io::Error::last_os_error().to_string(),
            );
        }
        Response::Ok
    }

    pub fn with_proc(
        &self,
        id: &str,
        exec_id: Option<&str>,
        f: impl FnOnce(&Proc) -> Result<(), ProcError>,
    ) -> Response {
        match self.find(id, exec_id) {
            Ok(proc) => match f(&proc) {
                Ok(()) => Response::Ok,
                Err(e) => proc_err(e),
            },
            Err(e) => e,
        }
    }

    pub fn stats(&self, id: &str) -> Response {
        match self.lock().containers.get(id) {
            Some(c) => Response::Stats {
                stats: cgroup::stats(&c.cgroup),
            },
            None => err(
                ErrorCode::NotFound,
                format!("container {id} does not exist"),
            ),
        }
    }

    /// The guest cgroup of container `id`.
    fn cgroup_of(&self, id: &str) -> Result<String, Response> {
        match self.lock().containers.get(id) {
            Some(c) => Ok(c.cgroup.clone()),
            None => Err(err(
                ErrorCode::NotFound,
                format!("container {id} does not exist"),
            )),
        }
    }

    /// Applies new limits to the container's cgroup.
    pub fn update(&self, id: &str, resources: &Resources) -> Response {
        let cgroup = match self.cgroup_of(id) {
            Ok(c) => c,
            Err(e) => return e,
        };
        match apply_resources(&cgroup, resources) {
            Ok(()) => Response::Ok,
            Err((code, message)) => err(code, message),
        }
    }

    /// Freezes or thaws the container's processes (pause/resume).
    pub fn freeze(&self, id: &str, on: bool) -> Response {
        let cgroup = match self.cgroup_of(id) {
            Ok(c) => c,
            Err(e) => return e,
        };
        match cgroup::freeze(&cgroup, on) {
            Ok(()) => Response::Ok,
            Err(message) => err(ErrorCode::Internal, message),
        }
    }

    /// Kills every process of the container, waits for its init, removes it.
    pub fn destroy(&self, id: &str) -> Response {
        let Some(c) = self.lock().containers.remove(id) else {
            return err(
                ErrorCode::NotFound,
                format!("container {id} does not exist"),
            );
        };
        let mut procs: Vec<Arc<Proc>> = c.execs.values().cloned().collect();
        procs.push(c.init.clone());
        if !c.cgroup.is_empty() {
            cgroup::signal_all(&c.cgroup, libc::SIGKILL);
        }
        for p in &procs {
            if !matches!(p.phase(), Phase::Exited(_)) {
                let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
            }
        }
        for p in &procs {
            // A created process is killed in its wait for the start byte.
            // Its output relays end on their own; destroy does not wait for
            // a reader on the host.
            p.wait_exit();
        }
        cgroup::remove(&c.cgroup);
        Response::Ok
    }
}
