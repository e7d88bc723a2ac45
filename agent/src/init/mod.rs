//! The container-init helper: the agent binary re-executed as
//! `hull-agent container-init` with a sync socket on fd 3 and the process's
//! stdio on fds 0-2. Being a fresh single-threaded process, it may unshare,
//! setns and fork freely (the agent itself is multi-threaded).
//!
//! It joins the container's cgroup, enters new namespaces (or, for an exec,
//! those of the container's init), forks so the child is inside the new pid
//! namespace, reports that child's pid and exits. The child builds the
//! container's file system view ([`rootfs`]), prepares the process
//! ([`process`]), reports `created`, waits for the start byte and execs the
//! workload. It is reparented to the agent (guest PID 1), which reaps it.

mod attrs;
mod caps;
mod console;
mod mountopts;
mod process;
mod rootfs;
mod securejoin;
mod timens;
pub mod userns;

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::FromRawFd;

use agent_protocol::container::LinuxNamespaceType as Ns;
use agent_protocol::{fdpass, wire};
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sched::CloneFlags;
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::unistd::ForkResult;

use crate::container::sync::{pipe as sync_pipe, InitMsg, InitRequest, SYNC_FD};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{what}: {source}")]
    Os { what: String, source: io::Error },
    #[error("{0}")]
    Msg(String),
}

impl InitError {
    /// The current errno, with what was being done.
    pub fn last(what: impl Into<String>) -> Self {
        Self::Os {
            what: what.into(),
            source: io::Error::last_os_error(),
        }
    }
    pub fn os(what: impl Into<String>, source: io::Error) -> Self {
        Self::Os {
            what: what.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, InitError>;

/// Checks a libc return value.
pub fn check(rc: libc::c_int, what: impl FnOnce() -> String) -> Result<()> {
    if rc < 0 {
        Err(InitError::last(what()))
    } else {
        Ok(())
    }
}

/// Checks the result of a nix call, with what was being done.
pub fn checked<T>(result: nix::Result<T>, what: impl FnOnce() -> String) -> Result<T> {
    result.map_err(|errno| InitError::os(what(), io::Error::from(errno)))
}

/// Entry point of the helper; never returns.
pub fn main() -> ! {
    // SAFETY: fd 3 was set up by the agent for this process alone.
    let mut sync = unsafe { File::from_raw_fd(SYNC_FD) };
    let code = match run(&mut sync) {
        Ok(()) => 0,
        Err(e) => {
            let _ = wire::send(
                &mut sync,
                &InitMsg::Error {
                    message: e.to_string(),
                },
            );
            1
        }
    };
    // SAFETY: ending this process without running anything else (nix has no
    // _exit; std's exit would run atexit handlers of the agent's libc).
    unsafe { libc::_exit(code) }
}

fn run(sync: &mut File) -> Result<()> {
    let request: InitRequest = wire::recv(sync)
        .map_err(|e| InitError::Msg(format!("reading the init request: {e}")))?
        .ok_or_else(|| InitError::Msg("no init request".into()))?;
    reset_signals();
    join_cgroup(&request.cgroup)?;
    process::apply_limits(&request.process)?;
    match (&request.join, &request.container) {
        (None, Some(container)) => {
            if let Some((pid, joined)) = &request.peer {
                join_peer(*pid, joined)?;
            }
            let namespaces = container.new_namespaces();
            if namespaces.contains(&Ns::User) {
                userns::enter(sync)?;
            }
            unshare(&namespaces)?;
            if namespaces.contains(&Ns::Time) {
                timens::write_offsets(&container.linux())?;
            }
        }
        (None, None) => return Err(InitError::Msg("neither a container nor a join".into())),
        (Some((pid, namespaces)), _) => join_namespaces(*pid, namespaces)?,
    }
    // The child waits for this pipe to close: until then the sync socket is
    // this process's (its frames and the agent's ack must not interleave
    // with the child's).
    let (parent_done_r, parent_done_w) = sync_pipe().map_err(|e| InitError::os("pipe", e))?;
    // SAFETY: single-threaded process; the child continues below.
    let forked = checked(unsafe { nix::unistd::fork() }, || "fork".into())?;
    if let ForkResult::Parent { child } = forked {
        let pid = child.as_raw();
        drop(parent_done_r);
        wire::send(sync, &InitMsg::Pid { pid })
            .map_err(|e| InitError::Msg(format!("reporting the pid: {e}")))?;
        // Stay the child's parent until the agent has registered its pid, so
        // the agent (which inherits it when this process exits) never sees
        // an exit it cannot place.
        let mut ack = [0u8; 1];
        let _ = sync.read(&mut ack);
        drop(parent_done_w);
        return Ok(());
    }
    drop(parent_done_w);
    let mut parent_done_r = parent_done_r;
    let _ = parent_done_r.read(&mut [0u8; 1]);
    let prepared = match &request.container {
        Some(container) => {
            let console = rootfs::build(container, &request.process)?;
            if let Some(master) = console {
                wire::send(sync, &InitMsg::Console)
                    .map_err(|e| InitError::Msg(format!("handing over the terminal: {e}")))?;
                fdpass::send_fd(sync, &[0], &master)
                    .map_err(|e| InitError::os("hand over the terminal", e))?;
            }
            process::Prepared::new(&request.process, Some(container), request.seccomp.as_ref())?
        }
        None => process::Prepared::new(&request.process, None, request.seccomp.as_ref())?,
    };
    wire::send(sync, &InitMsg::Created)
        .map_err(|e| InitError::Msg(format!("reporting created: {e}")))?;
    let mut start = [0u8; 1];
    match sync.read(&mut start) {
        Ok(1) => {}
        _ => return Err(InitError::Msg("not started (agent went away)".into())),
    }
    // The sync socket must not leak into the workload; on a successful exec
    // the agent sees it close.
    let _ = fcntl(&*sync, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    Err(prepared.exec())
}

/// The agent blocks SIGCHLD; the workload must start with a clean mask and
/// default dispositions.
fn reset_signals() {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // SAFETY: SIG_DFL installs no handler, so no handler can run unsafely;
    // errors for SIGKILL/SIGSTOP are ignored. Raw libc: nix's Signal has no
    // real-time signals, and its `signal` is unsafe all the same.
    unsafe {
        for sig in 1..libc::SIGRTMAX() {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

fn join_cgroup(cgroup: &str) -> Result<()> {
    if cgroup.is_empty() {
        return Ok(());
    }
    let procs = format!("{cgroup}/cgroup.procs");
    std::fs::write(&procs, b"0").map_err(|e| InitError::os(format!("joining {procs}"), e))
}

fn ns_flag(ns: Ns) -> CloneFlags {
    match ns {
        Ns::Pid => CloneFlags::CLONE_NEWPID,
        Ns::Mount => CloneFlags::CLONE_NEWNS,
        Ns::Uts => CloneFlags::CLONE_NEWUTS,
        Ns::Ipc => CloneFlags::CLONE_NEWIPC,
        Ns::Network => CloneFlags::CLONE_NEWNET,
        Ns::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        Ns::User => CloneFlags::CLONE_NEWUSER,
        Ns::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The name of a namespace under `/proc/<pid>/ns/`.
fn ns_file(ns: Ns) -> &'static str {
    match ns {
        Ns::Pid => "pid",
        Ns::Mount => "mnt",
        Ns::Uts => "uts",
        Ns::Ipc => "ipc",
        Ns::Network => "net",
        Ns::Cgroup => "cgroup",
        Ns::User => "user",
        Ns::Time => "time",
    }
}

/// Unshares every listed namespace but the user namespace (entered first,
/// by [`userns::enter`]) and the network namespace: the VM is the
/// container's network namespace (as in Kata), its interfaces are the
/// container's. A mount namespace always: the container's mounts must not
/// touch the guest's.
fn unshare(namespaces: &[Ns]) -> Result<()> {
    let flags = namespaces
        .iter()
        .filter(|&&ns| ns != Ns::User && ns != Ns::Network)
        .fold(CloneFlags::CLONE_NEWNS, |f, &ns| f | ns_flag(ns));
    checked(nix::sched::unshare(flags), || {
        format!("unshare {namespaces:?}")
    })
}

/// Joins the namespaces `joined` of a pod sibling whose init is `pid`
/// (ipc, uts, cgroup, pid, time, user; never its mount namespace): the
/// new container is made in them.
fn join_peer(pid: i32, joined: &[Ns]) -> Result<()> {
    for ns in [Ns::User, Ns::Ipc, Ns::Uts, Ns::Cgroup, Ns::Pid, Ns::Time] {
        if !joined.contains(&ns) {
            continue;
        }
        let path = format!("/proc/{pid}/ns/{}", ns_file(ns));
        let file = File::open(&path).map_err(|e| InitError::os(format!("open {path}"), e))?;
        checked(nix::sched::setns(&file, ns_flag(ns)), || {
            format!("setns {ns:?} of pid {pid}")
        })?;
        if ns == Ns::User {
            userns::become_root()?;
        }
    }
    Ok(())
}

/// Joins the namespaces of the container whose init is `pid`: the user
/// namespace first (it owns the others), the mount namespace last (after it
/// `/proc` is the container's).
fn join_namespaces(pid: i32, namespaces: &[Ns]) -> Result<()> {
    let mut order: Vec<Ns> = Vec::new();
    for ns in [Ns::User, Ns::Ipc, Ns::Uts, Ns::Cgroup, Ns::Pid, Ns::Time] {
        if namespaces.contains(&ns) {
            order.push(ns);
        }
    }
    order.push(Ns::Mount);
    let root_path = format!("/proc/{pid}/root");
    let root = File::open(&root_path).map_err(|e| InitError::os(format!("open {root_path}"), e))?;
    let mut files = Vec::new();
    for ns in order {
        let path = format!("/proc/{pid}/ns/{}", ns_file(ns));
        let file = File::open(&path).map_err(|e| InitError::os(format!("open {path}"), e))?;
        files.push((ns, file));
    }
    for (ns, file) in files {
        checked(nix::sched::setns(&file, ns_flag(ns)), || {
            format!("setns {ns:?} of pid {pid}")
        })?;
        if ns == Ns::User {
            userns::become_root()?;
        }
    }
    // The container's root may be a mount moved over the namespace's root
    // (no pivot_root out of an initramfs): take the init's root itself.
    checked(nix::unistd::fchdir(&root), || {
        "fchdir to the container root".into()
    })?;
    checked(nix::unistd::chroot("."), || {
        "chroot to the container root".into()
    })
}
