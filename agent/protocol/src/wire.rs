//! The control channel between the host and hull-agent: one vsock stream to
//! guest port [`AGENT_PORT`], carrying frames of a 4-byte big-endian length
//! and that many bytes of JSON. The host speaks first with
//! [`Request::Hello`]; an agent of another [`PROTOCOL_VERSION`] answers with
//! an error of code [`ErrorCode::VersionMismatch`]. Every frame is limited to
//! [`MAX_FRAME_BYTES`].
//!
//! Each stdio stream of a process is its own vsock connection to
//! [`STREAM_PORT`]: the host sends one [`StreamHello`] frame, the agent
//! answers with one [`Response`] frame (`ok` or an error), and from then on
//! the connection carries the stream's raw bytes. The host half-closes a
//! stdin stream for end of file.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use crate::container::{
    ContainerConfig, ExitStatus, Process, Resources, Stats, Stream, WindowSize,
};
use crate::network::NetworkConfig;
use crate::{Ready, PROTOCOL_VERSION};

/// The guest vsock port the agent listens on.
pub const AGENT_PORT: u32 = 1024;
/// The guest vsock port for stdio stream connections.
pub const STREAM_PORT: u32 = 1025;
/// Largest frame either side accepts.
pub const MAX_FRAME_BYTES: u32 = 1 << 20;

/// Host → agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    Hello {
        version: u32,
    },
    /// Builds the container and its init process, stopped before exec.
    /// `stdin`: whether the host attaches a stdin stream.
    Create {
        container_id: String,
        config: Box<ContainerConfig>,
        #[serde(default)]
        stdin: bool,
    },
    /// Prepares an extra process in a running container, stopped before exec.
    Exec {
        container_id: String,
        exec_id: String,
        process: Box<Process>,
        #[serde(default)]
        stdin: bool,
    },
    /// Lets a created process (init when `exec_id` is absent) exec its
    /// program. Its streams must be attached first.
    Start {
        container_id: String,
        #[serde(default)]
        exec_id: Option<String>,
    },
    /// Sends a signal to a process (init when `exec_id` is absent), or with
    /// `all` to every process of the container.
    Signal {
        container_id: String,
        #[serde(default)]
        exec_id: Option<String>,
        signal: i32,
        #[serde(default)]
        all: bool,
    },
    /// Answers [`Response::Exited`] once the process has exited and all its
    /// output has been delivered. Blocks the connection until then.
    Wait {
        container_id: String,
        #[serde(default)]
        exec_id: Option<String>,
    },
    ResizeTty {
        container_id: String,
        #[serde(default)]
        exec_id: Option<String>,
        size: WindowSize,
    },
    CloseStdin {
        container_id: String,
        #[serde(default)]
        exec_id: Option<String>,
    },
    Stats {
        container_id: String,
    },
    /// Changes the limits of the container's guest cgroup; answers `ok`, or
    /// an error naming the setting the kernel refused (settings before it
    /// are applied).
    Update {
        container_id: String,
        resources: Resources,
    },
    /// Freezes (`frozen`) or thaws every process of the container (its
    /// cgroup's `cgroup.freeze`); answers once the kernel says it is done.
    /// Signals sent meanwhile are delivered at the thaw; SIGKILL at once.
    Freeze {
        container_id: String,
        frozen: bool,
    },
    /// Sets up the guest's NICs, addresses and routes as the host's
    /// interfaces are (see [`NetworkConfig`]); answers `ok`, or an error
    /// naming what failed. Sent once, before the first `create`.
    ConfigureNetwork {
        network: NetworkConfig,
    },
    /// Kills whatever is left of the container and removes it.
    Destroy {
        container_id: String,
    },
    PowerOff,
}

/// First frame on a [`STREAM_PORT`] connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamHello {
    pub version: u32,
    pub container_id: String,
    #[serde(default)]
    pub exec_id: Option<String>,
    pub stream: Stream,
}

/// Agent → host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    Hello {
        version: u32,
        ready: ReadyInfo,
    },
    Ok,
    /// The process exists, stopped before exec; `pid` is its guest pid.
    Created {
        pid: i32,
    },
    Exited {
        status: ExitStatus,
    },
    Stats {
        stats: Stats,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
}

impl Response {
    /// An error response.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Response::Error {
            code,
            message: message.into(),
        }
    }
}

/// Structured error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    VersionMismatch,
    HelloRequired,
    BadRequest,
    /// No such container or process.
    NotFound,
    /// The id is taken.
    AlreadyExists,
    /// Not allowed in the current state (e.g. start twice).
    InvalidState,
    /// Building the container or process failed; the message says why
    /// (e.g. `executable file not found in $PATH: foo`).
    CreateFailed,
    /// Anything else that went wrong in the agent.
    Internal,
}

/// The ready report, as carried in [`Response::Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyInfo {
    pub boottime_us: u64,
    pub cpus: u32,
    pub mem_total_kib: u64,
}

impl From<&Ready> for ReadyInfo {
    fn from(r: &Ready) -> Self {
        Self {
            boottime_us: r.boottime_us,
            cpus: r.cpus,
            mem_total_kib: r.mem_total_kib,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME_BYTES}")]
    TooLarge(u64),
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// Writes one message as a frame.
pub fn send<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), WireError> {
    let body = serde_json::to_vec(msg)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&n| n <= MAX_FRAME_BYTES)
        .ok_or(WireError::TooLarge(body.len() as u64))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(&body)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame and parses it; `Ok(None)` at a clean end of stream.
pub fn recv<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> Result<Option<T>, WireError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    }
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge(u64::from(len)));
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body)?;
    Ok(Some(serde_json::from_slice(&body)?))
}

/// The agent's answer to a hello.
pub fn answer_hello(version: u32, ready: &Ready) -> Response {
    if version == PROTOCOL_VERSION {
        Response::Hello {
            version: PROTOCOL_VERSION,
            ready: ready.into(),
        }
    } else {
        Response::Error {
            code: ErrorCode::VersionMismatch,
            message: format!("host speaks protocol {version}, agent speaks {PROTOCOL_VERSION}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        send(&mut buf, &Request::Hello { version: 1 }).unwrap();
        send(&mut buf, &Request::PowerOff).unwrap();
        let first = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        assert_eq!(&buf[4..4 + first], br#"{"type":"hello","version":1}"#);
        let mut r = buf.as_slice();
        assert_eq!(
            recv::<Request>(&mut r).unwrap(),
            Some(Request::Hello { version: 1 })
        );
        assert_eq!(recv::<Request>(&mut r).unwrap(), Some(Request::PowerOff));
        assert_eq!(recv::<Request>(&mut r).unwrap(), None);
    }

    #[test]
    fn oversized_truncated_and_malformed_frames_are_errors() {
        let mut big = (MAX_FRAME_BYTES + 1).to_be_bytes().to_vec();
        big.extend_from_slice(b"{}");
        assert!(matches!(
            recv::<Request>(&mut big.as_slice()),
            Err(WireError::TooLarge(_))
        ));
        let mut short = 10u32.to_be_bytes().to_vec();
        short.extend_from_slice(b"{\"ty");
        assert!(matches!(
            recv::<Request>(&mut short.as_slice()),
            Err(WireError::Io(_))
        ));
        let mut junk = 9u32.to_be_bytes().to_vec();
        junk.extend_from_slice(b"{\"x\": 1}\n");
        assert!(matches!(
            recv::<Request>(&mut junk.as_slice()),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn update_is_snake_case_like_the_rest() {
        let req = Request::Update {
            container_id: "c".into(),
            resources: Resources {
                memory_max: Some(1 << 20),
                cpu_weight: Some(39),
                ..Resources::default()
            },
        };
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(json["type"], "update");
        assert_eq!(json["resources"]["memory_max"], 1 << 20);
        assert_eq!(json["resources"]["cpu_quota"], serde_json::Value::Null);
        let back: Request = serde_json::from_str(
            r#"{"type":"update","container_id":"c","resources":{"memory_max":1048576,"cpu_weight":39}}"#,
        )
        .unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn hello_checks_the_version() {
        let ready = Ready {
            boottime_us: 5,
            cpus: 1,
            mem_total_kib: 9,
            virtio: vec![],
            hwrng_bytes: 0,
        };
        assert!(matches!(
            answer_hello(PROTOCOL_VERSION, &ready),
            Response::Hello {
                version: PROTOCOL_VERSION,
                ..
            }
        ));
        assert!(matches!(
            answer_hello(99, &ready),
            Response::Error {
                code: ErrorCode::VersionMismatch,
                ..
            }
        ));
        let json = serde_json::to_string(&Request::Hello { version: 1 }).unwrap();
        assert_eq!(json, r#"{"type":"hello","version":1}"#);
    }
}
