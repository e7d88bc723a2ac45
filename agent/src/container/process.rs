//! One process the agent runs in a container (init or exec): its state
//! machine (created → running → exited), its stdio ends on the agent's side,
//! and the relays that carry them over vsock stream connections.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::{Arc, Condvar, Mutex};

use agent_protocol::container::{ExitStatus, Stream, WindowSize};
use agent_protocol::wire;

use super::sync::InitMsg;
use crate::vsock;

/// Where a process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Built, stopped before exec.
    Created,
    Running,
    Exited(ExitStatus),
}

impl Phase {
    pub fn can_start(self) -> bool {
        self == Phase::Created
    }
}

/// The agent's ends of a process's stdio.
pub enum Ends {
    Pipes {
        stdin: Option<File>,
        stdout: File,
        stderr: File,
    },
    Tty {
        master: File,
    },
}

struct State {
    phase: Phase,
    /// Streams still to be attached.
    pending: HashSet<Stream>,
    /// Output relays still running.
    outputs_open: usize,
    ends: Option<Ends>,
    /// The stdin connection, to shut down on close-stdin.
    stdin_conn: Option<File>,
    sync: Option<File>,
}

pub struct Proc {
    pub pid: i32,
    master: Option<File>,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("stream {0:?} is not one this process has, or is already attached")]
    UnexpectedStream(Stream),
    #[error("process is not in the created state")]
    NotCreated,
    #[error("streams not attached: {0:?}")]
    NotAttached(Vec<Stream>),
    #[error("exec failed: {0}")]
    ExecFailed(String),
    #[error("no terminal")]
    NoTerminal,
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> ProcError {
    move |source| ProcError::Io { what, source }
}

impl Proc {
    pub fn new(pid: i32, ends: Ends, streams: Vec<Stream>, sync: File) -> io::Result<Arc<Self>> {
        let master = match &ends {
            Ends::Tty { master } => Some(master.try_clone()?),
            Ends::Pipes { .. } => None,
        };
        Ok(Arc::new(Self {
            pid,
            master,
            state: Mutex::new(State {
                phase: Phase::Created,
                pending: streams.into_iter().collect(),
                outputs_open: 0,
                ends: Some(ends),
                stdin_conn: None,
                sync: Some(sync),
            }),
            changed: Condvar::new(),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn phase(&self) -> Phase {
        self.lock().phase
    }

    /// Connects one stream connection to the process and starts its relay.
    pub fn attach(self: &Arc<Self>, stream: Stream, conn: File) -> Result<(), ProcError> {
        let mut st = self.lock();
        if !st.pending.contains(&stream) {
            return Err(ProcError::UnexpectedStream(stream));
        }
        let ends = st
            .ends
            .as_mut()
            .ok_or(ProcError::UnexpectedStream(stream))?;
        match (stream, ends) {
            (Stream::Stdin, Ends::Pipes { stdin, .. }) => {
                let pipe = stdin.take().ok_or(ProcError::UnexpectedStream(stream))?;
                st.stdin_conn = Some(conn.try_clone().map_err(io_err("clone stdin"))?);
                spawn_copy(conn, pipe, None);
            }
            (Stream::Stdout, Ends::Pipes { stdout, .. }) => {
                let pipe = stdout.try_clone().map_err(io_err("clone stdout"))?;
                st.outputs_open += 1;
                spawn_copy(pipe, conn, Some(self.clone()));
            }
            (Stream::Stderr, Ends::Pipes { stderr, .. }) => {
                let pipe = stderr.try_clone().map_err(io_err("clone stderr"))?;
                st.outputs_open += 1;
                spawn_copy(pipe, conn, Some(self.clone()));
            }
            (Stream::Tty, Ends::Tty { master }) => {
                let input = master.try_clone().map_err(io_err("clone pty"))?;
                let output = master.try_clone().map_err(io_err("clone pty"))?;
                let conn_in = conn.try_clone().map_err(io_err("clone tty conn"))?;
                st.outputs_open += 1;
                spawn_copy(conn_in, input, None);
                spawn_copy(output, conn, Some(self.clone()));
            }
            _ => return Err(ProcError::UnexpectedStream(stream)),
        }
        st.pending.remove(&stream);
        Ok(())
    }

    /// Lets the process exec. Its output ends are dropped here: the relays
    /// hold their own, so end of file comes when the workload closes them.
    pub fn start(&self) -> Result<(), ProcError> {
        let mut sync = {
            let mut st = self.lock();
            if !st.phase.can_start() {
                return Err(ProcError::NotCreated);
            }
            if !st.pending.is_empty() {
                return Err(ProcError::NotAttached(st.pending.iter().copied().collect()));
            }
            st.ends = None;
            st.phase = Phase::Running;
            st.sync.take().ok_or(ProcError::NotCreated)?
        };
        sync.write_all(&[1]).map_err(io_err("start"))?;
        // End of file: the exec closed the socket. A message: it failed.
        match wire::recv::<InitMsg>(&mut sync) {
            Ok(None) => Ok(()),
            Ok(Some(InitMsg::Error { message })) => Err(ProcError::ExecFailed(message)),
            Ok(Some(other)) => Err(ProcError::ExecFailed(format!("unexpected {other:?}"))),
            Err(e) => Err(ProcError::ExecFailed(e.to_string())),
        }
    }

    /// Records the exit (from the reaper).
    pub fn exited(&self, status: ExitStatus) {
        let mut st = self.lock();
        st.phase = Phase::Exited(status);
        st.ends = None;
        st.sync = None;
        st.stdin_conn = None;
        self.changed.notify_all();
    }

    fn output_done(&self) {
        let mut st = self.lock();
        st.outputs_open = st.outputs_open.saturating_sub(1);
        self.changed.notify_all();
    }

    /// Blocks until the process exited and all its output went out.
    pub fn wait(&self) -> ExitStatus {
        let mut st = self.lock();
        loop {
            if let Phase::Exited(status) = st.phase {
                if st.outputs_open == 0 {
                    return status;
                }
            }
            st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Blocks until the process exited (its output may still be flowing).
    pub fn wait_exit(&self) -> ExitStatus {
        let mut st = self.lock();
        loop {
            if let Phase::Exited(status) = st.phase {
                return status;
            }
            st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    pub fn close_stdin(&self) {
        let mut st = self.lock();
        if let Some(conn) = st.stdin_conn.take() {
            vsock::shutdown(&conn, nix::sys::socket::Shutdown::Read);
        }
        if let Some(Ends::Pipes { stdin, .. }) = st.ends.as_mut() {
            stdin.take();
        }
    }

    pub fn resize(&self, size: WindowSize) -> Result<(), ProcError> {
        let master = self.master.as_ref().ok_or(ProcError::NoTerminal)?;
        let ws = libc::winsize {
            ws_row: size.rows,
            ws_col: size.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize, and `ws` is one; the pty
        // master is open.
        let rc = unsafe { crate::pty::set_winsize(std::os::fd::AsRawFd::as_raw_fd(master), &ws) };
        if let Err(errno) = rc {
            return Err(ProcError::Io {
                what: "resize",
                source: io::Error::from(errno),
            });
        }
        Ok(())
    }
}

/// Copies until end of file (EIO from a pty master whose slave closed counts
/// as end of file), then half-closes the destination when it is a socket.
/// `done` is told when this was an output relay.
fn spawn_copy(mut from: File, mut to: File, done: Option<Arc<Proc>>) {
    let on_failure = done.clone();
    let spawned = std::thread::Builder::new()
        .name("relay".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            vsock::shutdown(&to, nix::sys::socket::Shutdown::Write);
            drop(to);
            if let Some(p) = done {
                p.output_done();
            }
        });
    if spawned.is_err() {
        crate::console::log("hull-agent: cannot start a stdio relay thread");
        if let Some(p) = on_failure {
            p.output_done();
        }
    }
}
