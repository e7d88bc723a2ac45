//! An extra process in a running container (`hull exec`): prepare it in the
//! guest, attach its streams to host stdio, start it, forward signals and
//! window sizes to it, and wait for its exit and output.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_protocol::container::{ExitStatus, Process, Stream};

use super::signals::{SignalError, SignalForwarder, FORWARDED};
use super::stdio::{self, HostStdio, Relays, StdioError};
use super::tty::{self, RawMode};
use super::{Client, ClientError};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Signals(#[from] SignalError),
    #[error(transparent)]
    Agent(#[from] ClientError),
    #[error(transparent)]
    Stdio(#[from] StdioError),
    #[error("cannot put the terminal in raw mode: {0}")]
    RawMode(std::io::Error),
}

/// One exec.
#[derive(Debug, Clone)]
pub struct ExecOptions<'a> {
    pub vsock: &'a Path,
    pub container_id: &'a str,
    pub exec_id: &'a str,
    pub output_grace: Duration,
    /// Forward signals this process receives (call before starting threads).
    pub forward_signals: bool,
}

/// Runs `process` in the container with `stdio`; `on_started` is called
/// once it runs. Returns its exit status.
pub fn exec(
    opts: &ExecOptions<'_>,
    mut process: Process,
    stdio: HostStdio,
    on_started: impl FnOnce(),
) -> Result<ExitStatus, ExecError> {
    let (id, eid) = (opts.container_id, opts.exec_id);
    let terminal = process.terminal().unwrap_or(false);
    if terminal {
        crate::bundle::spec::default_console_size(&mut process, tty::window_size(&stdio.stdout));
    }
    let (client, _) = Client::connect(opts.vsock)?;
    let control = Arc::new(Mutex::new(client));
    let host_tty = stdio.stdout.try_clone().ok();
    let _signals = if opts.forward_signals {
        let (control, id, eid) = (control.clone(), id.to_owned(), eid.to_owned());
        let mut wanted = FORWARDED.to_vec();
        wanted.push(libc::SIGWINCH);
        Some(SignalForwarder::start(&wanted, move |s| {
            let mut c = control.lock().unwrap_or_else(|p| p.into_inner());
            // A failure shows in the wait.
            let _ = if s == libc::SIGWINCH {
                match (terminal, host_tty.as_ref().and_then(tty::window_size)) {
                    (true, Some(size)) => c.resize_tty(&id, Some(&eid), size),
                    _ => Ok(()),
                }
            } else {
                c.signal(&id, Some(&eid), s, false)
            };
        })?)
    } else {
        None
    };
    let stdin = stdio.stdin.is_some();
    let lock = || control.lock().unwrap_or_else(|p| p.into_inner());
    lock().exec(id, eid, &process, stdin)?;
    let mut streams = Vec::new();
    for kind in Stream::for_process(terminal, stdin) {
        streams.push((kind, stdio::attach(opts.vsock, id, Some(eid), kind)?));
    }
    let raw = match (terminal, &stdio.stdin) {
        (true, Some(input)) => RawMode::enable(input).map_err(ExecError::RawMode)?,
        _ => None,
    };
    let relays = Relays::start(streams, stdio)?;
    let (mut waiter, _) = Client::connect(opts.vsock)?;
    lock().start(id, Some(eid))?;
    on_started();
    let status = waiter.wait(id, Some(eid))?;
    let _ = relays.finish(opts.output_grace);
    drop(raw);
    Ok(status)
}
