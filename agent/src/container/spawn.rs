//! Starting the container-init helper (the agent binary re-executed) with
//! the process's stdio and a sync socket, up to the point where the process
//! is created and waits for its start byte.

use std::fs::File;
use std::io;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use agent_protocol::container::{Process, WindowSize};
use agent_protocol::{fdpass, wire};
use nix::sys::socket::{AddressFamily, SockFlag, SockType};
use nix::unistd::ForkResult;

use super::process::Ends;
use super::sync::{InitMsg, InitRequest, SYNC_FD};
use crate::init::userns;
use crate::pty;

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
    /// The helper reported why it could not build the process.
    #[error("{0}")]
    Failed(String),
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> SpawnError {
    move |source| SpawnError::Io { what, source }
}

fn nix_err(what: &'static str) -> impl FnOnce(nix::Error) -> SpawnError {
    move |errno| SpawnError::Io {
        what,
        source: errno.into(),
    }
}

fn pipe() -> Result<(File, File), SpawnError> {
    super::sync::pipe().map_err(io_err("pipe"))
}

/// An exec's pty: from the devpts instance of the container whose init is
/// `pid`, so the process finds it as `/dev/pts/N` there; the guest's when the
/// container has none.
fn exec_pty(size: Option<WindowSize>, pid: i32) -> Result<(File, File), SpawnError> {
    let root = format!("/proc/{pid}/root");
    let pair = match pty::open_in_root(Path::new(&root)) {
        Ok(Some(pair)) => pair,
        _ => pty::open_guest().map_err(io_err("open a pty"))?,
    };
    pty::set_size(&pair.0, size);
    Ok(pair)
}

/// The helper's stdio: three fds to become its 0, 1 and 2.
struct ChildFds([OwnedFd; 3]);

/// Spawns the helper for `request`; `on_pid` learns the process's pid
/// before the helper exits (so its exit can be placed). Returns the pid, the
/// agent's stdio ends and the sync socket once the process is created.
pub fn spawn(
    request: &InitRequest,
    stdin: bool,
    on_pid: impl FnOnce(i32),
) -> Result<(i32, Ends, File), SpawnError> {
    let process = &request.process;
    let size = console_size(process);
    // `None`: the init's terminal, which its helper makes in the container's
    // devpts and hands over (InitMsg::Console).
    let (ends, child) = if process.terminal().unwrap_or(false) {
        let dup = |f: &File| f.try_clone().map(OwnedFd::from).map_err(io_err("dup"));
        match request.join {
            Some((pid, _)) => {
                let (master, slave) = exec_pty(size, pid)?;
                let fds = ChildFds([dup(&slave)?, dup(&slave)?, OwnedFd::from(slave)]);
                (Some(Ends::Tty { master }), fds)
            }
            None => {
                let null = File::open("/dev/null").map_err(io_err("open /dev/null"))?;
                (
                    None,
                    ChildFds([dup(&null)?, dup(&null)?, OwnedFd::from(null)]),
                )
            }
        }
    } else {
        let (in_r, in_w) = if stdin {
            let (r, w) = pipe()?;
            (OwnedFd::from(r), Some(w))
        } else {
            let null = File::open("/dev/null").map_err(io_err("open /dev/null"))?;
            (OwnedFd::from(null), None)
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let ends = Ends::Pipes {
            stdin: in_w,
            stdout: out_r,
            stderr: err_r,
        };
        (
            Some(ends),
            ChildFds([in_r, OwnedFd::from(out_w), OwnedFd::from(err_w)]),
        )
    };
    let (mut ours, theirs) = socketpair()?;
    let helper = fork_exec(&child, &theirs)?;
    drop(child);
    drop(theirs);
    wire::send(&mut ours, request).map_err(|e| SpawnError::Failed(e.to_string()))?;
    let pid = loop {
        match recv(&mut ours)? {
            InitMsg::Pid { pid } => break pid,
            InitMsg::IdMaps => {
                let container = request
                    .container
                    .as_ref()
                    .ok_or_else(|| SpawnError::Failed("id maps asked for by an exec".into()))?;
                userns::write_maps(helper, &container.linux()).map_err(SpawnError::Failed)?;
                ours.write_all(&[1])
                    .map_err(io_err("acknowledge the id maps"))?;
            }
            InitMsg::Error { message } => return Err(SpawnError::Failed(message)),
            other => return Err(SpawnError::Failed(format!("unexpected {other:?}"))),
        }
    };
    on_pid(pid);
    ours.write_all(&[1])
        .map_err(io_err("acknowledge the pid"))?;
    let mut ends = ends;
    loop {
        match recv(&mut ours)? {
            InitMsg::Console if ends.is_none() => {
                let (_, fd) = fdpass::recv_fd(&ours, 1)
                    .map_err(io_err("receive the container's terminal"))?;
                ends = Some(Ends::Tty {
                    master: File::from(fd),
                });
            }
            InitMsg::Created => {
                let ends = ends.ok_or_else(|| SpawnError::Failed("no terminal came".into()))?;
                return Ok((pid, ends, ours));
            }
            InitMsg::Error { message } => return Err(SpawnError::Failed(message)),
            other => return Err(SpawnError::Failed(format!("unexpected {other:?}"))),
        }
    }
}

/// fork + execve of `/proc/self/exe container-init` with `fds` as 0-2 and
/// `sync` as fd 3. The child runs only async-signal-safe calls (the agent
/// is multi-threaded); its exit is collected by the reaper.
fn fork_exec(fds: &ChildFds, sync: &OwnedFd) -> Result<i32, SpawnError> {
    let exe = c"/proc/self/exe";
    let argv = [
        c"hull-agent".as_ptr(),
        c"container-init".as_ptr(),
        std::ptr::null(),
    ];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    let raw: [i32; 3] = [
        fds.0[0].as_raw_fd(),
        fds.0[1].as_raw_fd(),
        fds.0[2].as_raw_fd(),
    ];
    let sync_fd = sync.as_raw_fd();
    // SAFETY: the child only calls dup2, fcntl, execve and _exit, all
    // async-signal-safe, on values prepared before the fork.
    let forked =
        unsafe { nix::unistd::fork() }.map_err(nix_err("fork the container-init helper"))?;
    let pid = match forked {
        ForkResult::Parent { child } => child.as_raw(),
        ForkResult::Child => {
            // SAFETY: see above; sources are all above 2 (0-2 are the console).
            // Raw libc, not nix: this is the child of a multi-threaded process,
            // where only async-signal-safe calls may run, and nix's execve
            // allocates its pointer vectors (and its dup2 wants OwnedFds).
            unsafe {
                for (target, &source) in raw.iter().enumerate() {
                    if libc::dup2(source, target as i32) < 0 {
                        libc::_exit(126);
                    }
                }
                if sync_fd == SYNC_FD {
                    libc::fcntl(SYNC_FD, libc::F_SETFD, 0);
                } else if libc::dup2(sync_fd, SYNC_FD) < 0 {
                    libc::_exit(126);
                }
                libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(127);
            }
        }
    };
    Ok(pid)
}

/// A process's initial terminal size, when the spec gives one that fits.
pub fn console_size(process: &Process) -> Option<WindowSize> {
    let b = process.console_size()?;
    Some(WindowSize {
        rows: u16::try_from(b.height()).ok()?,
        cols: u16::try_from(b.width()).ok()?,
    })
}

fn recv(sync: &mut File) -> Result<InitMsg, SpawnError> {
    wire::recv::<InitMsg>(sync)
        .map_err(|e| SpawnError::Failed(format!("container-init helper: {e}")))?
        .ok_or_else(|| SpawnError::Failed("container-init helper exited without a word".into()))
}

fn socketpair() -> Result<(File, OwnedFd), SpawnError> {
    let (ours, theirs) = nix::sys::socket::socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(nix_err("socketpair"))?;
    Ok((File::from(ours), theirs))
}
