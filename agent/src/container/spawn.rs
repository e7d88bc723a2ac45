//! Starting the container-init helper (the agent binary re-executed) with
//! the process's stdio and a sync socket, up to the point where the process
//! is created and waits for its start byte.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use agent_protocol::container::WindowSize;
use agent_protocol::{fdpass, wire};

use super::process::Ends;
use super::sync::{InitMsg, InitRequest, SYNC_FD};
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

fn last(what: &'static str) -> SpawnError {
    SpawnError::Io {
        what,
        source: io::Error::last_os_error(),
    }
}

fn pipe() -> Result<(File, File), SpawnError> {
    super::sync::pipe().map_err(io_err("pipe"))
}

/// A pty pair: (master, slave), with the initial size. For an exec into a
/// container (`in_pid`: its init), the pty comes from the container's own
/// devpts instance, so the process finds it as `/dev/pts/N` there.
fn pty(size: Option<WindowSize>, in_pid: Option<i32>) -> Result<(File, File), SpawnError> {
    if let Some(pid) = in_pid {
        if let Ok(pair) = container_pty(pid) {
            pty::set_size(&pair.0, size);
            return Ok(pair);
        }
    }
    // SAFETY: opening the pty multiplexer.
    let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if master < 0 {
        return Err(last("open /dev/ptmx"));
    }
    // SAFETY: `master` is a fresh fd owned here.
    let master_file = unsafe { File::from_raw_fd(master) };
    let mut name = [0 as libc::c_char; 64];
    // SAFETY: `master` is a pty master; `name` has the stated length.
    let ok = unsafe {
        libc::grantpt(master) == 0
            && libc::unlockpt(master) == 0
            && libc::ptsname_r(master, name.as_mut_ptr(), name.len()) == 0
    };
    if !ok {
        return Err(last("set up the pty"));
    }
    // SAFETY: ptsname_r wrote a NUL-terminated name.
    let slave_name = unsafe { CStr::from_ptr(name.as_ptr()) };
    // SAFETY: opening the slave by its NUL-terminated name.
    let slave = unsafe {
        libc::open(
            slave_name.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return Err(last("open the pty slave"));
    }
    // SAFETY: `slave` is a fresh fd owned here.
    let slave_file = unsafe { File::from_raw_fd(slave) };
    pty::set_size(&master_file, size);
    Ok((master_file, slave_file))
}

/// A pty of the devpts instance mounted in process `pid`'s root.
fn container_pty(pid: i32) -> Result<(File, File), SpawnError> {
    let root = format!("/proc/{pid}/root");
    pty::open_in_root(Path::new(&root))
        .map_err(io_err("open a pty of the container's devpts"))?
        .ok_or_else(|| SpawnError::Failed("the container has no devpts".into()))
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
    let (ends, child) = if process.terminal {
        let (master, slave) = pty(process.console_size, request.join.as_ref().map(|j| j.0))?;
        let s = |f: &File| {
            f.try_clone()
                .map(OwnedFd::from)
                .map_err(io_err("clone pty"))
        };
        let fds = ChildFds([s(&slave)?, s(&slave)?, OwnedFd::from(slave)]);
        (Ends::Tty { master }, fds)
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
            ends,
            ChildFds([in_r, OwnedFd::from(out_w), OwnedFd::from(err_w)]),
        )
    };
    let (mut ours, theirs) = socketpair()?;
    fork_exec(&child, &theirs)?;
    drop(child);
    drop(theirs);
    wire::send(&mut ours, request).map_err(|e| SpawnError::Failed(e.to_string()))?;
    let pid = match recv(&mut ours)? {
        InitMsg::Pid { pid } => pid,
        InitMsg::Error { message } => return Err(SpawnError::Failed(message)),
        other => return Err(SpawnError::Failed(format!("unexpected {other:?}"))),
    };
    on_pid(pid);
    ours.write_all(&[1])
        .map_err(io_err("acknowledge the pid"))?;
    let mut ends = ends;
    loop {
        match recv(&mut ours)? {
            InitMsg::Console => {
                let (_, fd) = fdpass::recv_fd(&ours, 1)
                    .map_err(io_err("receive the container's terminal"))?;
                match &mut ends {
                    // The container's own pty replaces the one made here.
                    Ends::Tty { master } => *master = File::from(fd),
                    Ends::Pipes { .. } => {
                        return Err(SpawnError::Failed(
                            "a terminal for a process without one".into(),
                        ))
                    }
                }
            }
            InitMsg::Created => return Ok((pid, ends, ours)),
            InitMsg::Error { message } => return Err(SpawnError::Failed(message)),
            other => return Err(SpawnError::Failed(format!("unexpected {other:?}"))),
        }
    }
}

/// fork + execve of `/proc/self/exe container-init` with `fds` as 0-2 and
/// `sync` as fd 3. The child runs only async-signal-safe calls (the agent
/// is multi-threaded); its exit is collected by the reaper.
fn fork_exec(fds: &ChildFds, sync: &OwnedFd) -> Result<(), SpawnError> {
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
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(last("fork the container-init helper"));
    }
    if pid == 0 {
        // SAFETY: see above; sources are all above 2 (0-2 are the console).
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
    Ok(())
}

fn recv(sync: &mut File) -> Result<InitMsg, SpawnError> {
    wire::recv::<InitMsg>(sync)
        .map_err(|e| SpawnError::Failed(format!("container-init helper: {e}")))?
        .ok_or_else(|| SpawnError::Failed("container-init helper exited without a word".into()))
}

fn socketpair() -> Result<(File, OwnedFd), SpawnError> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc < 0 {
        return Err(last("socketpair"));
    }
    // SAFETY: both fds are fresh and owned by nobody else.
    Ok(unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
