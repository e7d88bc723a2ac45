//! A process's stdio: one vsock connection per [`Stream`] to the agent's
//! [`STREAM_PORT`], each opened with a [`StreamHello`] and relayed by its own
//! thread to or from the host's descriptors.

use std::fs::File;
use std::io::{self, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use agent_protocol::container::Stream;
use agent_protocol::wire::{self, Response, StreamHello, WireError, STREAM_PORT};
use agent_protocol::PROTOCOL_VERSION;

use super::pump::{self, Canceller};
use super::vsock::{self, VsockError};

#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error(transparent)]
    Vsock(#[from] VsockError),
    #[error("{stream:?} stream: {source}")]
    Wire { stream: Stream, source: WireError },
    #[error("{stream:?} stream: the agent closed the connection before answering")]
    Closed { stream: Stream },
    #[error("{stream:?} stream refused by the agent: {message}")]
    Refused { stream: Stream, message: String },
    #[error("{stream:?} stream: unexpected answer {answer}")]
    Unexpected { stream: Stream, answer: String },
    #[error("cannot duplicate the host's {what}: {source}")]
    HostFd {
        what: &'static str,
        source: io::Error,
    },
    #[error("cannot start a stdio relay: {0}")]
    Spawn(io::Error),
}

/// Opens `stream` of a process (init when `exec_id` is `None`) through the
/// VM's hybrid vsock socket.
pub fn attach(
    uds: &Path,
    container_id: &str,
    exec_id: Option<&str>,
    stream: Stream,
) -> Result<UnixStream, StdioError> {
    let conn = vsock::connect(uds, STREAM_PORT)?;
    greet(conn, container_id, exec_id, stream)
}

/// The stream hello on a connected stream: send it, expect `ok`.
pub fn greet(
    mut conn: UnixStream,
    container_id: &str,
    exec_id: Option<&str>,
    stream: Stream,
) -> Result<UnixStream, StdioError> {
    let hello = StreamHello {
        version: PROTOCOL_VERSION,
        container_id: container_id.into(),
        exec_id: exec_id.map(Into::into),
        stream,
    };
    let wire = |source| StdioError::Wire { stream, source };
    wire::send(&mut conn, &hello).map_err(wire)?;
    match wire::recv::<Response>(&mut conn).map_err(wire)? {
        Some(Response::Ok) => Ok(conn),
        Some(Response::Error { message, .. }) => Err(StdioError::Refused { stream, message }),
        Some(other) => Err(StdioError::Unexpected {
            stream,
            answer: format!("{other:?}"),
        }),
        None => Err(StdioError::Closed { stream }),
    }
}

/// The host ends of a process's stdio.
#[derive(Debug)]
pub struct HostStdio {
    /// `None`: the process gets no stdin stream.
    pub stdin: Option<File>,
    pub stdout: File,
    pub stderr: File,
}

impl HostStdio {
    /// Duplicates this process's descriptors 0, 1 and 2 (no stdin if fd 0
    /// is closed).
    pub fn inherit() -> Result<Self, StdioError> {
        fn dup(fd: impl AsFd, what: &'static str) -> Result<File, StdioError> {
            let owned = fd
                .as_fd()
                .try_clone_to_owned()
                .map_err(|source| StdioError::HostFd { what, source })?;
            Ok(File::from(owned))
        }
        Ok(Self {
            stdin: dup(io::stdin(), "stdin").ok(),
            stdout: dup(io::stdout(), "stdout")?,
            stderr: dup(io::stderr(), "stderr")?,
        })
    }
}

/// Running relay threads of one process.
#[derive(Debug)]
pub struct Relays {
    outputs_done: mpsc::Receiver<()>,
    /// Bytes the output relays have written so far.
    progress: Arc<AtomicU64>,
    outputs: Vec<(UnixStream, JoinHandle<io::Result<u64>>)>,
    input: Option<(Canceller, UnixStream, JoinHandle<io::Result<u64>>)>,
}

impl Relays {
    /// Starts one thread per stream: Stdin and Tty take host stdin (stdin is
    /// half-closed at its end, the tty is not), Stdout and Tty go to host
    /// stdout, Stderr to host stderr.
    pub fn start(streams: Vec<(Stream, UnixStream)>, host: HostStdio) -> Result<Self, StdioError> {
        let (done_tx, outputs_done) = mpsc::channel();
        let mut relays = Self {
            outputs_done,
            progress: Arc::new(AtomicU64::new(0)),
            outputs: Vec::new(),
            input: None,
        };
        let mut stdin = host.stdin;
        for (kind, conn) in streams {
            let clone = || conn.try_clone().map_err(StdioError::Spawn);
            if matches!(kind, Stream::Stdin | Stream::Tty) {
                if let Some(mut src) = stdin.take() {
                    let (canceller, token) = pump::cancel_pair().map_err(StdioError::Spawn)?;
                    let dst = clone()?;
                    let half_close = kind == Stream::Stdin;
                    let t = spawn("hull-stdin", move || {
                        pump::pump_input(&mut src, &dst, &token, half_close)
                    })?;
                    relays.input = Some((canceller, clone()?, t));
                }
            }
            let dst = match kind {
                Stream::Stdin => continue,
                Stream::Stdout | Stream::Tty => host.stdout.try_clone(),
                Stream::Stderr => host.stderr.try_clone(),
            }
            .map_err(StdioError::Spawn)?;
            let handle = clone()?;
            let done = done_tx.clone();
            let mut counted = Counted {
                inner: dst,
                progress: relays.progress.clone(),
            };
            let t = spawn("hull-output", move || {
                let r = pump::pump_output(&conn, &mut counted);
                let _ = done.send(());
                r
            })?;
            relays.outputs.push((handle, t));
        }
        Ok(relays)
    }

    /// Waits for the output streams to end (the agent closes them once the
    /// process's output is all sent). Streams that moved no byte for `grace`
    /// are cut (some other process kept them open); a slow reader on our
    /// side is not cut. Then stops the input relay. Returns the first output
    /// error, if any.
    pub fn finish(self, grace: Duration) -> io::Result<()> {
        let mut pending = self.outputs.len();
        let mut seen = self.progress.load(Ordering::Relaxed);
        while pending > 0 {
            match self.outputs_done.recv_timeout(grace) {
                Ok(()) => pending -= 1,
                Err(_) => {
                    let now = self.progress.load(Ordering::Relaxed);
                    if now == seen {
                        break;
                    }
                    seen = now;
                }
            }
        }
        let mut result = Ok(());
        for (handle, thread) in self.outputs {
            let _ = handle.shutdown(Shutdown::Read);
            let r = thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("relay panicked")));
            if let Err(e) = r {
                if result.is_ok() && !pump::is_gone(&e) {
                    result = Err(e);
                }
            }
        }
        if let Some((canceller, handle, thread)) = self.input {
            canceller.cancel();
            // Unblocks a pump stuck writing to a process that reads no more.
            let _ = handle.shutdown(Shutdown::Write);
            let _ = thread.join();
        }
        result
    }
}

fn spawn(
    name: &str,
    f: impl FnOnce() -> io::Result<u64> + Send + 'static,
) -> Result<JoinHandle<io::Result<u64>>, StdioError> {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(StdioError::Spawn)
}

#[cfg(test)]
mod tests;

/// A writer that counts what it wrote into a shared counter.
struct Counted<W> {
    inner: W,
    progress: Arc<AtomicU64>,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
