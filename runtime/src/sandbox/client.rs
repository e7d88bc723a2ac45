//! The control client: one connection to the agent's [`AGENT_PORT`], a hello
//! with a version check, then typed request/response calls. An agent error
//! becomes [`ClientError::Agent`] carrying the agent's message.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use agent_protocol::container::{ContainerConfig, ExitStatus, Process, Stats, WindowSize};
use agent_protocol::wire::{self, ErrorCode, ReadyInfo, Request, Response, WireError, AGENT_PORT};
use agent_protocol::PROTOCOL_VERSION;

use super::vsock::{self, VsockError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Vsock(#[from] VsockError),
    #[error("agent protocol: {0}")]
    Wire(#[from] WireError),
    #[error("the agent closed the control connection")]
    Closed,
    #[error(
        "the agent speaks another protocol version (hull speaks {PROTOCOL_VERSION}): {message}"
    )]
    VersionMismatch { message: String },
    #[error("{request} failed in the agent: {message}")]
    Agent {
        request: &'static str,
        code: ErrorCode,
        message: String,
    },
    /// The agent did not answer within the request's deadline (the
    /// connection is shut down: a late answer must not be taken for the
    /// next request's).
    #[error("the agent did not answer {request} within {secs} s")]
    Deadline { request: &'static str, secs: u64 },
    #[error("unexpected answer to {request}: {response}")]
    Unexpected {
        request: &'static str,
        response: String,
    },
}

impl ClientError {
    /// The connection is gone (closed, reset, cut mid-frame): what a dying
    /// VM looks like from here.
    pub fn is_disconnect(&self) -> bool {
        match self {
            ClientError::Closed => true,
            ClientError::Wire(WireError::Io(e)) => matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            ),
            ClientError::Vsock(VsockError::Closed { .. }) => true,
            _ => false,
        }
    }
}

/// One control connection. Calls are synchronous; [`Client::wait`] blocks
/// the connection until the process exits, so it wants a connection of its
/// own.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    /// Every request but `wait` must be answered within this.
    deadline: Duration,
    /// A bound set with [`Client::set_timeout`] on everything, `wait` too.
    limit: Option<Duration>,
}

/// How long a request but `wait` may take by default
/// (`timeouts.agent_request_secs`). Creating a container in a slow test host
/// takes seconds; a minute means the agent is stuck.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(60);

fn name(req: &Request) -> &'static str {
    match req {
        Request::Hello { .. } => "hello",
        Request::Create { .. } => "create",
        Request::Exec { .. } => "exec",
        Request::Start { .. } => "start",
        Request::Signal { .. } => "signal",
        Request::Wait { .. } => "wait",
        Request::ResizeTty { .. } => "resize_tty",
        Request::CloseStdin { .. } => "close_stdin",
        Request::Stats { .. } => "stats",
        Request::Update { .. } => "update",
        Request::Freeze { frozen: true, .. } => "pause",
        Request::Freeze { frozen: false, .. } => "resume",
        Request::Destroy { .. } => "destroy",
        Request::ConfigureNetwork { .. } => "configure_network",
        Request::PowerOff => "power_off",
    }
}

impl Client {
    /// Connects to the agent through the VM's hybrid vsock socket and says
    /// hello.
    pub fn connect(uds: &Path) -> Result<(Self, ReadyInfo), ClientError> {
        let mut client = Self::from_stream(vsock::connect(uds, AGENT_PORT)?);
        let ready = client.hello()?;
        Ok((client, ready))
    }

    /// [`Client::connect`] with every step, the vsock handshake and hello
    /// included, bounded by `deadline`, which later requests keep.
    pub fn connect_within(
        uds: &Path,
        deadline: Duration,
    ) -> Result<(Self, ReadyInfo), ClientError> {
        let stream = UnixStream::connect(uds).map_err(|source| VsockError::Connect {
            path: uds.to_path_buf(),
            source,
        })?;
        let bounded = stream
            .set_read_timeout(Some(deadline))
            .and_then(|()| stream.set_write_timeout(Some(deadline)));
        bounded.map_err(WireError::from)?;
        let mut stream = stream;
        match vsock::handshake(&mut stream, AGENT_PORT) {
            Err(VsockError::Io { source, .. })
                if matches!(
                    source.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ClientError::Deadline {
                    request: "connect",
                    secs: deadline.as_secs(),
                })
            }
            other => other?,
        };
        let mut client = Self::from_stream(stream);
        client.set_deadline(deadline);
        let ready = client.hello()?;
        Ok((client, ready))
    }

    /// A client over an already connected stream (no hello sent yet).
    pub fn from_stream(stream: UnixStream) -> Self {
        Self {
            stream,
            deadline: REQUEST_DEADLINE,
            limit: None,
        }
    }

    /// Sets the deadline of every later request but `wait`.
    pub fn set_deadline(&mut self, deadline: Duration) {
        self.deadline = deadline;
    }

    /// A second handle on the connection, to `shutdown` it from another
    /// thread (which ends a blocked call with [`ClientError::Closed`]).
    pub fn try_clone_stream(&self) -> io::Result<UnixStream> {
        self.stream.try_clone()
    }

    fn call(&mut self, req: Request) -> Result<Response, ClientError> {
        let request = name(&req);
        let bound = match (&req, self.limit) {
            (Request::Wait { .. }, limit) => limit,
            (_, Some(limit)) => Some(limit.min(self.deadline)),
            (_, None) => Some(self.deadline),
        };
        self.stream
            .set_read_timeout(bound)
            .and_then(|()| self.stream.set_write_timeout(bound))
            .map_err(WireError::from)?;
        let answer = wire::send(&mut self.stream, &req).and_then(|()| wire::recv(&mut self.stream));
        let answer = match answer {
            Err(WireError::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                let _ = self.stream.shutdown(std::net::Shutdown::Both);
                return Err(ClientError::Deadline {
                    request,
                    secs: bound.map_or(0, |b| b.as_secs()),
                });
            }
            other => other?,
        };
        match answer {
            None => Err(ClientError::Closed),
            Some(Response::Error {
                code: ErrorCode::VersionMismatch,
                message,
            }) => Err(ClientError::VersionMismatch { message }),
            Some(Response::Error { code, message }) => Err(ClientError::Agent {
                request,
                code,
                message,
            }),
            Some(response) => Ok(response),
        }
    }

    fn call_ok(&mut self, req: Request) -> Result<(), ClientError> {
        let request = name(&req);
        match self.call(req)? {
            Response::Ok => Ok(()),
            other => Err(unexpected(request, &other)),
        }
    }

    /// The version handshake; returns the agent's ready report.
    pub fn hello(&mut self) -> Result<ReadyInfo, ClientError> {
        match self.call(Request::Hello {
            version: PROTOCOL_VERSION,
        })? {
            Response::Hello { version, ready } if version == PROTOCOL_VERSION => Ok(ready),
            Response::Hello { version, .. } => Err(ClientError::VersionMismatch {
                message: format!("agent answered hello with version {version}"),
            }),
            other => Err(unexpected("hello", &other)),
        }
    }

    /// Builds container `id` with its init process stopped before exec;
    /// returns the init's guest pid.
    pub fn create(
        &mut self,
        id: &str,
        config: &ContainerConfig,
        stdin: bool,
    ) -> Result<i32, ClientError> {
        let req = Request::Create {
            container_id: id.into(),
            config: Box::new(config.clone()),
            stdin,
        };
        match self.call(req)? {
            Response::Created { pid } => Ok(pid),
            other => Err(unexpected("create", &other)),
        }
    }

    /// Prepares process `exec_id` in container `id`; returns its guest pid.
    pub fn exec(
        &mut self,
        id: &str,
        exec_id: &str,
        process: &Process,
        stdin: bool,
    ) -> Result<i32, ClientError> {
        let req = Request::Exec {
            container_id: id.into(),
            exec_id: exec_id.into(),
            process: Box::new(process.clone()),
            stdin,
        };
        match self.call(req)? {
            Response::Created { pid } => Ok(pid),
            other => Err(unexpected("exec", &other)),
        }
    }

    pub fn start(&mut self, id: &str, exec_id: Option<&str>) -> Result<(), ClientError> {
        self.call_ok(Request::Start {
            container_id: id.into(),
            exec_id: exec_id.map(Into::into),
        })
    }

    pub fn signal(
        &mut self,
        id: &str,
        exec_id: Option<&str>,
        signal: i32,
        all: bool,
    ) -> Result<(), ClientError> {
        self.call_ok(Request::Signal {
            container_id: id.into(),
            exec_id: exec_id.map(Into::into),
            signal,
            all,
        })
    }

    /// Blocks until the process has exited and its output was delivered.
    pub fn wait(&mut self, id: &str, exec_id: Option<&str>) -> Result<ExitStatus, ClientError> {
        let req = Request::Wait {
            container_id: id.into(),
            exec_id: exec_id.map(Into::into),
        };
        match self.call(req)? {
            Response::Exited { status } => Ok(status),
            other => Err(unexpected("wait", &other)),
        }
    }

    pub fn resize_tty(
        &mut self,
        id: &str,
        exec_id: Option<&str>,
        size: WindowSize,
    ) -> Result<(), ClientError> {
        self.call_ok(Request::ResizeTty {
            container_id: id.into(),
            exec_id: exec_id.map(Into::into),
            size,
        })
    }

    pub fn close_stdin(&mut self, id: &str, exec_id: Option<&str>) -> Result<(), ClientError> {
        self.call_ok(Request::CloseStdin {
            container_id: id.into(),
            exec_id: exec_id.map(Into::into),
        })
    }

    pub fn stats(&mut self, id: &str) -> Result<Stats, ClientError> {
        match self.call(Request::Stats {
            container_id: id.into(),
        })? {
            Response::Stats { stats } => Ok(stats),
            other => Err(unexpected("stats", &other)),
        }
    }

    /// Bounds every later read and write on the connection (`None`: no
    /// bound). Teardown uses it so a wedged agent cannot hold the host.
    pub fn set_timeout(&mut self, limit: Option<Duration>) -> std::io::Result<()> {
        self.limit = limit;
        self.stream.set_read_timeout(limit)?;
        self.stream.set_write_timeout(limit)
    }

    pub fn destroy(&mut self, id: &str) -> Result<(), ClientError> {
        self.call_ok(Request::Destroy {
            container_id: id.into(),
        })
    }

    /// Sets the guest's NICs up as the host's interfaces are.
    pub fn configure_network(
        &mut self,
        network: &agent_protocol::network::NetworkConfig,
    ) -> Result<(), ClientError> {
        self.call_ok(Request::ConfigureNetwork {
            network: network.clone(),
        })
    }

    /// Changes the resource limits of container `id`'s guest cgroup.
    pub fn update(
        &mut self,
        id: &str,
        resources: agent_protocol::container::Resources,
    ) -> Result<(), ClientError> {
        self.call_ok(Request::Update {
            container_id: id.into(),
            resources,
        })
    }

    /// Freezes (`true`) or thaws container `id`'s guest cgroup: `pause`
    /// and `resume`, as runc freezes the container's cgroup.
    pub fn freeze(&mut self, id: &str, frozen: bool) -> Result<(), ClientError> {
        self.call_ok(Request::Freeze {
            container_id: id.into(),
            frozen,
        })
    }

    /// Asks the agent to power the VM off; the VMM exits soon after.
    pub fn power_off(&mut self) -> Result<(), ClientError> {
        self.call_ok(Request::PowerOff)
    }
}

fn unexpected(request: &'static str, response: &Response) -> ClientError {
    ClientError::Unexpected {
        request,
        response: serde_json::to_string(response).unwrap_or_else(|_| format!("{response:?}")),
    }
}

#[cfg(test)]
mod tests;
