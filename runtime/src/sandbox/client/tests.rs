use std::thread;

use agent_protocol::container::Stream;
use agent_protocol::wire::StreamHello;

use super::*;

/// A fake agent on the other end of a socket pair: answers each request
/// with `answer` (or closes the connection on `None`); returns the requests.
pub(crate) fn fake_agent(
    mut answer: impl FnMut(&Request) -> Option<Response> + Send + 'static,
) -> (Client, thread::JoinHandle<Vec<Request>>) {
    let (host, mut agent) = UnixStream::pair().unwrap();
    let t = thread::spawn(move || {
        let mut seen = Vec::new();
        while let Ok(Some(req)) = wire::recv::<Request>(&mut agent) {
            let reply = answer(&req);
            seen.push(req);
            match reply {
                Some(r) => wire::send(&mut agent, &r).unwrap(),
                None => break,
            }
        }
        seen
    });
    (Client::from_stream(host), t)
}

fn ready() -> ReadyInfo {
    ReadyInfo {
        boottime_us: 1,
        cpus: 1,
        mem_total_kib: 2,
    }
}

#[test]
fn hello_then_typed_calls() {
    let (mut client, agent) = fake_agent(|req| {
        Some(match req {
            Request::Hello { version } => Response::Hello {
                version: *version,
                ready: ready(),
            },
            Request::Create { .. } | Request::Exec { .. } => Response::Created { pid: 7 },
            Request::Wait { .. } => Response::Exited {
                status: ExitStatus::Signal(9),
            },
            Request::Stats { .. } => Response::Stats {
                stats: Stats {
                    pids: 3,
                    ..Stats::default()
                },
            },
            _ => Response::Ok,
        })
    });
    assert_eq!(client.hello().unwrap(), ready());
    let config: ContainerConfig = serde_json::from_str(
        r#"{"spec":{"root":{"path":"/r"},"process":{"args":["x"],"cwd":"/","user":{}}}}"#,
    )
    .unwrap();
    assert_eq!(client.create("c", &config, true).unwrap(), 7);
    let process = config.process().unwrap();
    assert_eq!(client.exec("c", "e", process, false).unwrap(), 7);
    client.start("c", None).unwrap();
    client.signal("c", Some("e"), 15, false).unwrap();
    let size = WindowSize { rows: 2, cols: 3 };
    client.resize_tty("c", None, size).unwrap();
    client.close_stdin("c", None).unwrap();
    assert_eq!(client.stats("c").unwrap().pids, 3);
    assert_eq!(client.wait("c", None).unwrap(), ExitStatus::Signal(9));
    client.destroy("c").unwrap();
    client.power_off().unwrap();
    drop(client);
    let seen = agent.join().unwrap();
    assert_eq!(seen.len(), 11);
    assert!(matches!(
        &seen[1],
        Request::Create { container_id, stdin: true, .. } if container_id == "c"
    ));
    assert_eq!(
        seen[4],
        Request::Signal {
            container_id: "c".into(),
            exec_id: Some("e".into()),
            signal: 15,
            all: false
        }
    );
    assert_eq!(seen[10], Request::PowerOff);
}

#[test]
fn a_version_mismatch_is_a_clear_error() {
    let (mut client, _agent) = fake_agent(|_| {
        Some(Response::error(
            ErrorCode::VersionMismatch,
            "host speaks protocol 2, agent speaks protocol 3",
        ))
    });
    let e = client.hello().unwrap_err();
    assert!(matches!(e, ClientError::VersionMismatch { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("another protocol version") && text.contains("agent speaks protocol 3"));

    let (mut client, _agent) = fake_agent(|_| {
        Some(Response::Hello {
            version: PROTOCOL_VERSION + 1,
            ready: ready(),
        })
    });
    assert!(matches!(
        client.hello(),
        Err(ClientError::VersionMismatch { .. })
    ));
}

#[test]
fn agent_errors_carry_the_agents_message() {
    let (mut client, _agent) = fake_agent(|_| {
        Some(Response::error(
            ErrorCode::CreateFailed,
            "executable file not found in $PATH: foo",
        ))
    });
    let config: ContainerConfig = serde_json::from_str(
        r#"{"spec":{"root":{"path":"/r"},"process":{"args":["foo"],"cwd":"/","user":{}}}}"#,
    )
    .unwrap();
    let e = client.create("c", &config, false).unwrap_err();
    assert!(matches!(
        e,
        ClientError::Agent {
            request: "create",
            code: ErrorCode::CreateFailed,
            ..
        }
    ));
    assert_eq!(
        e.to_string(),
        "create failed in the agent: executable file not found in $PATH: foo"
    );
}

#[test]
fn odd_answers_and_closed_connections_are_errors() {
    let (mut client, _agent) = fake_agent(|req| match req {
        Request::Start { .. } => Some(Response::Created { pid: 1 }),
        _ => None,
    });
    let e = client.start("c", None).unwrap_err();
    assert!(e.to_string().contains("unexpected answer to start"), "{e}");
    let e = client.wait("c", None).unwrap_err();
    assert!(e.is_disconnect(), "{e:?}");
    assert!(matches!(e, ClientError::Closed));
}

#[test]
fn a_shutdown_from_another_thread_ends_a_blocked_wait() {
    // The agent never answers the wait; shutting the stream down unblocks it.
    let (host, agent) = UnixStream::pair().unwrap();
    let mut client = Client::from_stream(host);
    let handle = client.try_clone_stream().unwrap();
    let t = thread::spawn(move || client.wait("c", None));
    let mut agent_end = agent;
    let _req: Option<Request> = wire::recv(&mut agent_end).unwrap();
    handle.shutdown(std::net::Shutdown::Both).unwrap();
    let e = t.join().unwrap().unwrap_err();
    assert!(e.is_disconnect(), "{e:?}");
}

#[test]
fn stream_hello_frames_are_what_the_agent_expects() {
    let hello = StreamHello {
        version: PROTOCOL_VERSION,
        container_id: "c".into(),
        exec_id: None,
        stream: Stream::Stdout,
    };
    let json = serde_json::to_string(&hello).unwrap();
    assert!(json.contains(r#""stream":"stdout""#), "{json}");
}

#[test]
fn connect_fails_cleanly_when_the_vm_closes_the_handshake() {
    let dir = crate::testutil::TempDir::new("client-connect");
    let path = dir.path().join("v.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    // A VMM that refuses the port: reads the CONNECT line, then hangs up.
    let vmm = thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(&conn), &mut line).unwrap();
        line
    });
    let e = Client::connect(&path).unwrap_err();
    assert!(
        matches!(e, ClientError::Vsock(VsockError::Closed { port: 1024 })),
        "{e:?}"
    );
    assert!(e.is_disconnect());
    assert_eq!(vmm.join().unwrap(), "CONNECT 1024\n");
}

/// An agent that reads requests and never answers.
fn silent_agent() -> (Client, UnixStream) {
    let (host, agent) = UnixStream::pair().unwrap();
    (Client::from_stream(host), agent)
}

#[test]
fn a_request_past_its_deadline_fails_naming_it_and_wait_has_none() {
    let (mut client, _agent) = silent_agent();
    client.set_deadline(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let e = client.freeze("c", true).unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Deadline {
                request: "pause",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("did not answer pause"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The connection is shut down: a late answer cannot be mistaken for
    // the next request's.
    assert!(client.stats("c").is_err());

    // `wait` is not bounded by the deadline: it is still waiting when the
    // agent answers after it.
    let (host, mut agent) = UnixStream::pair().unwrap();
    let mut client = Client::from_stream(host);
    client.set_deadline(Duration::from_millis(100));
    let waiter = thread::spawn(move || client.wait("c", None));
    let req: Request = wire::recv(&mut agent).unwrap().unwrap();
    assert!(matches!(req, Request::Wait { .. }));
    // Longer than the deadline, then the answer.
    let mut buf = [0u8; 1];
    agent
        .set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let _ = std::io::Read::read(&mut agent, &mut buf);
    wire::send(
        &mut agent,
        &Response::Exited {
            status: ExitStatus::Code(3),
        },
    )
    .unwrap();
    assert_eq!(waiter.join().unwrap().unwrap(), ExitStatus::Code(3));
}
