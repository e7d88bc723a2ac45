//! The agent's container requests, spoken directly over vsock in a real
//! guest whose sandbox share is a busybox rootfs on virtio-fs: create,
//! stream attach, start, wait, exec, signal, stats, destroy.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use agent_protocol::container::{ContainerConfig, ExitStatus, Process, Stream};
use agent_protocol::wire::{
    self, ErrorCode, Request, Response, StreamHello, AGENT_PORT, STREAM_PORT,
};
use agent_protocol::{PROTOCOL_VERSION, SHARE_MOUNT};
use hull_e2e::bundle::busybox_rootfs;
use hull_e2e::{boot_args, Live, Scratch};

fn connect(uds: &Path, port: u32) -> UnixStream {
    let mut s = UnixStream::connect(uds).expect("connect to the vsock socket");
    s.write_all(format!("CONNECT {port}\n").as_bytes())
        .expect("CONNECT");
    // Read the OK line byte by byte so nothing after it is consumed.
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while b[0] != b'\n' {
        s.read_exact(&mut b).expect("read OK line");
        line.push(b[0]);
    }
    assert!(
        line.starts_with(b"OK "),
        "{:?}",
        String::from_utf8_lossy(&line)
    );
    s
}

struct Control(UnixStream);

impl Control {
    fn open(uds: &Path) -> Self {
        let mut c = Control(connect(uds, AGENT_PORT));
        let hello = c.ask(Request::Hello {
            version: PROTOCOL_VERSION,
        });
        assert!(matches!(hello, Response::Hello { .. }), "{hello:?}");
        c
    }
    fn ask(&mut self, req: Request) -> Response {
        wire::send(&mut self.0, &req).expect("send");
        wire::recv(&mut self.0)
            .expect("recv")
            .expect("agent closed the channel")
    }
}

fn attach(uds: &Path, id: &str, exec_id: Option<&str>, stream: Stream) -> UnixStream {
    let mut s = connect(uds, STREAM_PORT);
    let hello = StreamHello {
        version: PROTOCOL_VERSION,
        container_id: id.into(),
        exec_id: exec_id.map(Into::into),
        stream,
    };
    wire::send(&mut s, &hello).expect("stream hello");
    let reply: Response = wire::recv(&mut s).expect("stream reply").expect("reply");
    assert_eq!(reply, Response::Ok, "attach {stream:?}");
    s
}

fn read_all(mut s: UnixStream) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    })
}

fn config(id: &str, args: &[&str]) -> ContainerConfig {
    let process: Process = serde_json::from_value(serde_json::json!({
        "args": args, "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}
    }))
    .expect("process");
    serde_json::from_value(serde_json::json!({"spec": {
        "ociVersion": "1.2.0",
        "root": {"path": format!("{SHARE_MOUNT}/{id}/rootfs")},
        "process": process,
        "hostname": "agent-test"
    }}))
    .expect("config")
}

/// A booted VM whose share holds a busybox rootfs per container id, and the
/// path of its vsock socket.
fn boot_with_share(name: &str, cpus: u32, ids: &[&str]) -> (Scratch, Live, std::path::PathBuf) {
    let scratch = Scratch::tmp(name);
    let share = scratch.0.join("share");
    for id in ids {
        busybox_rootfs(&share.join(id));
    }
    let uds = scratch.0.join("v.sock");
    let mut args = boot_args(cpus, 256);
    args.extend([
        "--vsock".into(),
        format!("3:{}", uds.display()),
        "--fs".into(),
        format!("hullshare={}", share.display()),
    ]);
    let mut vm = Live::spawn(&args);
    if vm.wait_ready().is_none() {
        panic!("agent never ready: {:?}", vm.finish());
    }
    (scratch, vm, uds)
}

#[test]
fn agent_runs_containers_from_the_virtio_fs_share() {
    let (_scratch, vm, uds) = boot_with_share("agent", 2, &["c1", "c2"]);
    let mut ctl = Control::open(&uds);

    // c1: output on both streams, exit code 3, all output before the exit.
    let cfg = config(
        "c1",
        &["sh", "-c", "echo out; echo err >&2; hostname; exit 3"],
    );
    let created = ctl.ask(Request::Create {
        container_id: "c1".into(),
        config: Box::new(cfg),
        stdin: false,
    });
    assert!(
        matches!(created, Response::Created { pid } if pid > 1),
        "{created:?}"
    );
    let out = read_all(attach(&uds, "c1", None, Stream::Stdout));
    let err = read_all(attach(&uds, "c1", None, Stream::Stderr));
    assert_eq!(
        ctl.ask(Request::Start {
            container_id: "c1".into(),
            exec_id: None
        }),
        Response::Ok
    );
    let waited = ctl.ask(Request::Wait {
        container_id: "c1".into(),
        exec_id: None,
    });
    assert_eq!(
        waited,
        Response::Exited {
            status: ExitStatus::Code(3)
        }
    );
    assert_eq!(out.join().unwrap(), "out\nagent-test\n");
    assert_eq!(err.join().unwrap(), "err\n");
    let again = ctl.ask(Request::Start {
        container_id: "c1".into(),
        exec_id: None,
    });
    assert!(
        matches!(
            again,
            Response::Error {
                code: ErrorCode::InvalidState,
                ..
            }
        ),
        "{again:?}"
    );
    assert_eq!(
        ctl.ask(Request::Destroy {
            container_id: "c1".into()
        }),
        Response::Ok
    );

    // A missing program is a create error with the reason.
    let bad = ctl.ask(Request::Create {
        container_id: "bad".into(),
        config: Box::new(config("c1", &["no-such-program"])),
        stdin: false,
    });
    match bad {
        Response::Error {
            code: ErrorCode::CreateFailed,
            message,
        } => {
            assert!(
                message.contains("executable file not found in $PATH: no-such-program"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }

    // c2: a long-running init, an exec in it, stats, then SIGKILL.
    let cfg = config("c2", &["sleep", "1000"]);
    assert!(matches!(
        ctl.ask(Request::Create {
            container_id: "c2".into(),
            config: Box::new(cfg),
            stdin: false
        }),
        Response::Created { .. }
    ));
    let _out = read_all(attach(&uds, "c2", None, Stream::Stdout));
    let _err = read_all(attach(&uds, "c2", None, Stream::Stderr));
    assert_eq!(
        ctl.ask(Request::Start {
            container_id: "c2".into(),
            exec_id: None
        }),
        Response::Ok
    );
    let exec: Process = serde_json::from_value(serde_json::json!({
        "args": ["sh", "-c", "echo pid1=$(cat /proc/1/comm); cat"], "env": ["PATH=/bin"],
        "cwd": "/", "user": {"uid": 0, "gid": 0}
    }))
    .unwrap();
    let made = ctl.ask(Request::Exec {
        container_id: "c2".into(),
        exec_id: "e1".into(),
        process: Box::new(exec),
        stdin: true,
    });
    assert!(matches!(made, Response::Created { .. }), "{made:?}");
    let mut stdin = attach(&uds, "c2", Some("e1"), Stream::Stdin);
    let eout = read_all(attach(&uds, "c2", Some("e1"), Stream::Stdout));
    let _eerr = read_all(attach(&uds, "c2", Some("e1"), Stream::Stderr));
    assert_eq!(
        ctl.ask(Request::Start {
            container_id: "c2".into(),
            exec_id: Some("e1".into())
        }),
        Response::Ok
    );
    stdin.write_all(b"piped\n").unwrap();
    stdin.shutdown(std::net::Shutdown::Write).unwrap();
    let waited = ctl.ask(Request::Wait {
        container_id: "c2".into(),
        exec_id: Some("e1".into()),
    });
    assert_eq!(
        waited,
        Response::Exited {
            status: ExitStatus::Code(0)
        }
    );
    assert_eq!(eout.join().unwrap(), "pid1=sleep\npiped\n");
    match ctl.ask(Request::Stats {
        container_id: "c2".into(),
    }) {
        Response::Stats { stats } => {
            assert!(stats.pids >= 1 && stats.memory_usage_bytes > 0, "{stats:?}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ctl.ask(Request::Signal {
            container_id: "c2".into(),
            exec_id: None,
            signal: 9,
            all: false
        }),
        Response::Ok
    );
    let waited = ctl.ask(Request::Wait {
        container_id: "c2".into(),
        exec_id: None,
    });
    assert_eq!(
        waited,
        Response::Exited {
            status: ExitStatus::Signal(9)
        }
    );
    assert_eq!(
        ctl.ask(Request::Destroy {
            container_id: "c2".into()
        }),
        Response::Ok
    );
    let gone = ctl.ask(Request::Destroy {
        container_id: "c2".into(),
    });
    assert!(
        matches!(
            gone,
            Response::Error {
                code: ErrorCode::NotFound,
                ..
            }
        ),
        "{gone:?}"
    );

    assert_eq!(ctl.ask(Request::PowerOff), Response::Ok);
    let run = vm.finish();
    assert!(run.status.success(), "{run:?}");
}

#[test]
fn vsock_holds_hundreds_of_connections_at_once() {
    let (_scratch, vm, uds) = boot_with_share("agent-many", 2, &["c"]);
    // 300 control sessions open at the same time, each answering in turn.
    let mut sessions: Vec<Control> = (0..300).map(|_| Control::open(&uds)).collect();
    for (i, c) in sessions.iter_mut().enumerate().rev() {
        let r = c.ask(Request::Stats {
            container_id: format!("none{i}"),
        });
        assert!(
            matches!(
                r,
                Response::Error {
                    code: ErrorCode::NotFound,
                    ..
                }
            ),
            "{i}: {r:?}"
        );
    }
    drop(sessions);
    let mut ctl = Control::open(&uds);
    assert_eq!(ctl.ask(Request::PowerOff), Response::Ok);
    let run = vm.finish();
    assert!(run.status.success(), "{run:?}");
}

#[test]
fn terminal_mode_uses_a_guest_pty_that_follows_resizes() {
    let (_scratch, vm, uds) = boot_with_share("agent-tty", 1, &["t"]);
    let mut ctl = Control::open(&uds);
    let mut cfg = config(
        "t",
        &[
            "sh",
            "-c",
            "[ -t 0 ] && echo is-a-tty; stty size; read x; stty size",
        ],
    );
    let size = oci_spec::runtime::BoxBuilder::default()
        .height(30u64)
        .width(100u64)
        .build()
        .expect("console size");
    let process = cfg.spec.process_mut().as_mut().expect("process");
    process.set_terminal(Some(true));
    process.set_console_size(Some(size));
    let created = ctl.ask(Request::Create {
        container_id: "t".into(),
        config: Box::new(cfg),
        stdin: true,
    });
    assert!(matches!(created, Response::Created { .. }), "{created:?}");
    let tty = attach(&uds, "t", None, Stream::Tty);
    let mut input = tty.try_clone().unwrap();
    let mut output = std::io::BufReader::new(tty);
    assert_eq!(
        ctl.ask(Request::Start {
            container_id: "t".into(),
            exec_id: None
        }),
        Response::Ok
    );
    let mut seen = String::new();
    while !seen.contains("30 100") {
        let mut line = String::new();
        assert!(
            std::io::BufRead::read_line(&mut output, &mut line).unwrap() > 0,
            "{seen:?}"
        );
        seen.push_str(&line);
    }
    let size = agent_protocol::container::WindowSize {
        rows: 40,
        cols: 120,
    };
    let resized = ctl.ask(Request::ResizeTty {
        container_id: "t".into(),
        exec_id: None,
        size,
    });
    assert_eq!(resized, Response::Ok);
    input.write_all(b"go\n").unwrap();
    let mut rest = String::new();
    let _ = output.read_to_string(&mut rest);
    seen.push_str(&rest);
    let waited = ctl.ask(Request::Wait {
        container_id: "t".into(),
        exec_id: None,
    });
    assert_eq!(
        waited,
        Response::Exited {
            status: ExitStatus::Code(0)
        }
    );
    assert!(seen.contains("is-a-tty"), "{seen:?}");
    assert!(seen.contains("40 120"), "{seen:?}");
    assert_eq!(
        ctl.ask(Request::Destroy {
            container_id: "t".into()
        }),
        Response::Ok
    );
    assert_eq!(ctl.ask(Request::PowerOff), Response::Ok);
    assert!(vm.finish().status.success());
}
