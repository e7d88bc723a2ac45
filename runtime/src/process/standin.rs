//! The container's host process, its *stand-in*: the pid `hull create`
//! reports (`--pid-file`, `state.pid`).
//!
//! A runc container's pid is its init, in the namespaces the spec asks for,
//! and engines and tools look at `/proc/<pid>/ns/*`: Docker's prestart hook
//! moves the veth into `/proc/<pid>/ns/net`, runtime-tools checks that each
//! namespace listed without a path is new and each unlisted one is the
//! runtime's. hull's workload runs in the guest and its sandbox process
//! needs the host's privileges (KVM, the share's binds, taps), so a small
//! process stands in for the workload on the host. It is started in a new
//! namespace of each type the spec lists without a path (user, with the
//! spec's id maps; pid, uts, ipc, cgroup, mount); its network namespace is
//! the container's, which the sandbox process entered before starting it.
//! It holds nothing else, forwards the signals it gets to the sandbox
//! process, and exits with the workload's status when told.
//!
//! It is `hull` re-executed with [`CHILD_ENV`] = [`ROLE`], made a
//! grandchild so that it is reparented to the caller's reaper (the shim or
//! conmon, which wait for the container's pid), as runc's init is. On the
//! socket pair between the two (fd [`SYNC_FD`] in the stand-in), every
//! message is a 4-byte little-endian integer:
//! - sandbox → stand-in: "go" once the id maps are written; later the
//!   workload's end: `n >= 0` exit code `n`, `n < 0` death by signal `-n`;
//! - stand-in → sandbox: its pid as the sandbox sees it, then each signal
//!   it receives.
//!
//! End of file means the other side is gone: the stand-in then exits 255;
//! the sandbox takes it as SIGKILL for the workload (someone killed the
//! container's pid).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use agent_protocol::container::ExitStatus;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use super::pidfd::PidFd;
use super::sync::{CHILD_ENV, SYNC_FD};
use crate::state::proc::ProcStat;

/// The value of [`CHILD_ENV`] that makes `hull` a stand-in.
pub const ROLE: &str = "standin";

/// What the stand-in forwards: what `hull run` forwards, and SIGWINCH.
fn forwarded() -> impl Iterator<Item = i32> {
    crate::sandbox::signals::FORWARDED
        .into_iter()
        .chain([libc::SIGWINCH])
}

/// How long a stand-in that was let go may take to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StandinError {
    #[error("cannot create the stand-in's socket: {0}")]
    Socket(io::Error),
    #[error("cannot start the container's host process: {0}")]
    Spawn(io::Error),
    #[error("cannot write the {which} map of the container's host process: {source}")]
    IdMap {
        which: &'static str,
        source: io::Error,
    },
    #[error("the container's host process did not start: {0}")]
    Handshake(io::Error),
    #[error("cannot open the namespace {path} to join: {source}")]
    Join {
        path: std::path::PathBuf,
        source: io::Error,
    },
}

/// The namespaces a stand-in is made in, from the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandinNamespaces {
    /// Joined first (a user namespace before the others): a pod member's
    /// paths into its sandbox's stand-in.
    pub join: Vec<(CloneFlags, std::path::PathBuf)>,
    pub flags: CloneFlags,
    /// `/proc/<pid>/uid_map` text (empty: none written).
    pub uid_map: String,
    pub gid_map: String,
}

fn map_text(maps: Option<&Vec<LinuxIdMapping>>) -> String {
    maps.into_iter()
        .flatten()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

impl StandinNamespaces {
    /// A new namespace for each type `spec` lists without a path, the one
    /// at the path for each it lists with one; never the network one (the
    /// stand-in is started in the container's).
    pub fn of(spec: &Spec) -> Self {
        let linux = spec.linux().as_ref();
        let mut flags = CloneFlags::empty();
        let mut join = Vec::new();
        let list = linux.and_then(|l| l.namespaces().as_ref());
        for ns in list.into_iter().flatten() {
            if ns.typ() == LinuxNamespaceType::Network {
                continue;
            }
            match ns.path().as_ref().filter(|p| !p.as_os_str().is_empty()) {
                Some(path) if ns.typ() == LinuxNamespaceType::User => {
                    join.insert(0, (CloneFlags::CLONE_NEWUSER, path.clone()))
                }
                Some(path) => join.push((clone_flag(ns.typ()), path.clone())),
                // Time offsets are the guest's business.
                None if ns.typ() == LinuxNamespaceType::Time => {}
                None => flags |= clone_flag(ns.typ()),
            }
        }
        let user = flags.contains(CloneFlags::CLONE_NEWUSER);
        let pick = |maps| if user { map_text(maps) } else { String::new() };
        Self {
            join,
            flags,
            uid_map: pick(linux.and_then(|l| l.uid_mappings().as_ref())),
            gid_map: pick(linux.and_then(|l| l.gid_mappings().as_ref())),
        }
    }
}

fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// A running stand-in, seen from the sandbox process.
#[derive(Debug)]
pub struct Standin {
    pid: i32,
    start_time: u64,
    socket: UnixStream,
    /// Set once the stand-in was told to exit (its end of file is then no
    /// kill).
    released: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

fn word(value: i32) -> [u8; 4] {
    value.to_le_bytes()
}

fn read_word(r: &mut impl Read) -> io::Result<i32> {
    let mut buf = [0u8; 4];
    r.read_exact(&mut buf)?;
    Ok(i32::from_le_bytes(buf))
}

impl Standin {
    /// Starts `exe` as a stand-in in `namespaces` (and in the calling
    /// thread's network namespace and, unless a new one is asked for, its
    /// mount namespace).
    pub fn spawn(exe: &Path, namespaces: &StandinNamespaces) -> Result<Self, StandinError> {
        let mut joins = Vec::new();
        for (flag, path) in &namespaces.join {
            let file = std::fs::File::open(path).map_err(|source| StandinError::Join {
                path: path.clone(),
                source,
            })?;
            joins.push((flag.bits(), OwnedFd::from(file)));
        }
        let join_fds: Vec<(libc::c_int, libc::c_int)> =
            joins.iter().map(|(f, fd)| (*f, fd.as_raw_fd())).collect();
        let (mut socket, theirs) = UnixStream::pair().map_err(StandinError::Socket)?;
        let theirs = OwnedFd::from(theirs);
        let raw = theirs.as_raw_fd();
        let flags = namespaces.flags.bits();
        let mut cmd = Command::new(exe);
        cmd.env(CHILD_ENV, ROLE)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: the closure runs between fork and exec and only makes
        // async-signal-safe calls (dup2, fcntl, close_range, setsid,
        // unshare). Raw libc on purpose: a child of a multi-threaded
        // process, where nothing may allocate or take a lock.
        unsafe {
            cmd.pre_exec(move || {
                super::sync::sync_fd_in_child(raw)?;
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                for &(kind, fd) in &join_fds {
                    if libc::setns(fd, kind) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                if libc::unshare(flags) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            })
        };
        let mut first = cmd.spawn().map_err(StandinError::Spawn)?;
        drop(theirs);
        drop(joins);
        let handshake = (|| {
            let dir = format!("/proc/{}", first.id());
            for (which, text) in [("uid", &namespaces.uid_map), ("gid", &namespaces.gid_map)] {
                if !text.is_empty() {
                    std::fs::write(format!("{dir}/{which}_map"), text)
                        .map_err(|source| StandinError::IdMap { which, source })?;
                }
            }
            socket
                .write_all(&word(0))
                .and_then(|()| read_word(&mut socket))
                .map_err(StandinError::Handshake)
        })();
        if handshake.is_err() {
            let _ = first.kill();
        }
        // It exits once it has started the stand-in (or failed to).
        let _ = first.wait();
        let pid = handshake?;
        let start_time = ProcStat::read(pid)
            .ok()
            .flatten()
            .map(|s| s.start_time)
            .ok_or_else(|| StandinError::Handshake(io::Error::from_raw_os_error(libc::ESRCH)))?;
        Ok(Self {
            pid,
            start_time,
            socket,
            released: Arc::new(AtomicBool::new(false)),
            reader: None,
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// `/proc/<pid>/stat`'s start time, to tell a reused pid apart.
    pub fn start_time(&self) -> u64 {
        self.start_time
    }

    /// Hands each signal the stand-in receives to `handler`, on a thread;
    /// the stand-in's death (not after [`Self::release`]) comes as SIGKILL.
    pub fn forward(&mut self, mut handler: impl FnMut(i32) + Send + 'static) -> io::Result<()> {
        let mut socket = self.socket.try_clone()?;
        let released = self.released.clone();
        let thread = std::thread::Builder::new()
            .name("hull-standin".into())
            .spawn(move || loop {
                match read_word(&mut socket) {
                    Ok(signal) if (1..=64).contains(&signal) => handler(signal),
                    // Anything else is not a message of ours: ignored.
                    Ok(_) => {}
                    Err(_) => {
                        if !released.load(Ordering::SeqCst) {
                            handler(libc::SIGKILL);
                        }
                        return;
                    }
                }
            })?;
        self.reader = Some(thread);
        Ok(())
    }

    /// Tells the stand-in to end as the workload did; it exits at once.
    pub fn release(mut self, status: ExitStatus) {
        let value = match status {
            ExitStatus::Code(code) => code.max(0),
            ExitStatus::Signal(signal) => -signal.abs(),
        };
        self.released.store(true, Ordering::SeqCst);
        let _ = self.socket.write_all(&word(value));
        // Dropping it closes the socket and waits for it to go.
    }
}

impl Drop for Standin {
    /// Closes the socket (the stand-in exits on end of file, or after the
    /// word of [`Standin::release`]), waits a little for it to go and for
    /// the reader thread.
    fn drop(&mut self) {
        self.released.store(true, Ordering::SeqCst);
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        if let Ok(Some(p)) = PidFd::open(self.pid, self.start_time) {
            p.wait_exit(EXIT_TIMEOUT);
        }
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
    }
}

/// Whether this process was started as a stand-in.
pub fn is_standin() -> bool {
    std::env::var_os(CHILD_ENV).is_some_and(|v| v == ROLE)
}

/// The stand-in's whole life (see the module's documentation). Called
/// first thing in `main`, while the process has a single thread.
pub fn serve() -> ! {
    // SAFETY: SYNC_FD was set up by `Standin::spawn`; nothing else owns it.
    let mut socket = UnixStream::from(unsafe { OwnedFd::from_raw_fd(SYNC_FD) });
    if read_word(&mut socket).is_err() {
        std::process::exit(255);
    }
    // SAFETY: the process has one thread (see above), so the child may go
    // on running anything.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            let code = i32::from(socket.write_all(&word(child.as_raw())).is_err());
            std::process::exit(code)
        }
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(_) => std::process::exit(255),
    }
    let status = relay(&mut socket).unwrap_or(255);
    if status < 0 {
        super::exit::die_of(-status)
    }
    std::process::exit(status)
}

/// Forwards signals until the sandbox says how to end; its word.
fn relay(socket: &mut UnixStream) -> io::Result<i32> {
    let mut all = SigSet::all();
    all.remove(Signal::SIGKILL);
    all.remove(Signal::SIGSTOP);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None)?;
    let mut wanted = SigSet::empty();
    for s in forwarded() {
        wanted.add(Signal::try_from(s)?);
    }
    let signals = SignalFd::with_flags(&wanted, SfdFlags::SFD_CLOEXEC)?;
    loop {
        let mut fds = [
            PollFd::new(socket.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        let (told, signalled) = (ready(&fds[0]), ready(&fds[1]));
        if signalled {
            if let Ok(Some(info)) = signals.read_signal() {
                // The sandbox may be gone; its end of file comes next.
                let _ = socket.write_all(&word(info.ssi_signo as i32));
            }
        }
        if told {
            return read_word(socket);
        }
    }
}
