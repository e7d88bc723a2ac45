//! A stand-in for `hull-vmm` plus the guest agent, for testing `hull run`'s
//! host side without KVM: it takes hull-vmm's arguments, prints a console
//! and the ready line, reports ready (and how it ends) on the control
//! channel (`--control-fd`), listens on the hybrid vsock socket and serves the
//! agent protocol, running the container's process on the host in the
//! shared rootfs (which it reaches through the share, so the sandbox's binds
//! are exercised). `FAKE_VMM_MODE` picks a misbehaviour: `panic_at_boot`,
//! `hang_at_boot`, `panic_in_wait`, `reset_in_wait`, `drop_wait`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};

use agent_protocol::container::{ContainerConfig, ExitStatus, Stream};
use agent_protocol::wire::{self, ErrorCode, Request, Response, StreamHello};
use agent_protocol::{ready_line, Ready, SHARE_MOUNT};
use vmm_control::{Body, Event, SeqPacket, VmmMessage};

#[derive(Default)]
struct Agent {
    share: PathBuf,
    socket: PathBuf,
    config: Option<ContainerConfig>,
    streams: HashMap<Stream, UnixStream>,
    child_pid: Option<u32>,
    exit: Option<ExitStatus>,
}

type Shared = Arc<(Mutex<Agent>, Condvar)>;

fn arg(args: &[String], flag: &str) -> String {
    let i = args.iter().position(|a| a == flag).expect(flag);
    args[i + 1].clone()
}

fn ready() -> Ready {
    Ready {
        boottime_us: 1000,
        cpus: 1,
        mem_total_kib: 262_144,
        virtio: vec![19, 26],
        hwrng_bytes: 0,
    }
}

/// The control channel, numbered as hull-vmm numbers it.
struct Control {
    socket: SeqPacket,
    seq: Mutex<u64>,
}

static CONTROL: std::sync::OnceLock<Control> = std::sync::OnceLock::new();

fn send_event(event: Event) {
    let Some(control) = CONTROL.get() else { return };
    let mut seq = control.seq.lock().unwrap();
    *seq += 1;
    let message = VmmMessage {
        seq: *seq,
        ns: runtime::sandbox::timings::monotonic_ns(),
        body: Body::Event(event),
    };
    let _ = control.socket.send(&vmm_control::encode(&message).unwrap());
}

fn open_control(args: &[String]) {
    let fd: i32 = arg(args, "--control-fd").parse().unwrap();
    // SAFETY: the runtime hands this fd to hull-vmm for the control channel
    // only; nothing else in this process owns it.
    let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let socket = SeqPacket::from_fd(owned).unwrap();
    let _ = CONTROL.set(Control {
        socket,
        seq: Mutex::new(0),
    });
    send_event(Event::Hello {
        version: vmm_control::PROTOCOL_VERSION,
    });
}

pub fn main(args: &[String]) -> i32 {
    open_control(args);
    let mode = std::env::var("FAKE_VMM_MODE").unwrap_or_default();
    let socket = PathBuf::from(arg(args, "--vsock").split_once(':').unwrap().1);
    let share = PathBuf::from(arg(args, "--fs").strip_prefix("hullshare=").unwrap());
    println!("[    0.000000] Linux version 6.12 (fake)");
    match mode.as_str() {
        "panic_at_boot" => {
            println!("Kernel panic - not syncing: VFS: Unable to mount root fs");
            send_event(Event::Reset);
            return 1;
        }
        "hang_at_boot" => loop {
            thread::park();
        },
        _ => {}
    }
    let listener = UnixListener::bind(&socket).expect("bind the vsock socket");
    println!("{}", ready_line(&ready()));
    io::stdout().flush().unwrap();
    send_event(Event::FirstKvmRun);
    send_event(Event::AgentReady {
        vmm_rss_kib: 1,
        guest_rss_kib: 2,
    });
    let shared: Shared = Arc::new((
        Mutex::new(Agent {
            share,
            socket,
            ..Agent::default()
        }),
        Condvar::new(),
    ));
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let shared = shared.clone();
        let mode = mode.clone();
        thread::spawn(move || match connect_port(&mut conn) {
            Some(1024) => serve_control(conn, &shared, &mode),
            Some(1025) => serve_stream(conn, &shared),
            _ => {}
        });
    }
    0
}

fn connect_port(conn: &mut UnixStream) -> Option<u32> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while conn.read(&mut b).ok()? == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    let port = String::from_utf8(line)
        .ok()?
        .strip_prefix("CONNECT ")?
        .parse()
        .ok()?;
    conn.write_all(b"OK 1073741824\n").ok()?;
    Some(port)
}

fn serve_stream(mut conn: UnixStream, shared: &Shared) {
    let Ok(Some(hello)) = wire::recv::<StreamHello>(&mut conn) else {
        return;
    };
    // Recorded before the answer: the host starts the process right after.
    let mut answer = conn.try_clone().unwrap();
    shared.0.lock().unwrap().streams.insert(hello.stream, conn);
    wire::send(&mut answer, &Response::Ok).unwrap();
}

fn serve_control(mut conn: UnixStream, shared: &Shared, mode: &str) {
    while let Ok(Some(req)) = wire::recv::<Request>(&mut conn) {
        let answer = match req {
            Request::Hello { version } => wire::answer_hello(version, &ready()),
            Request::Create { config, .. } if args(&config)[0] == "missing-binary" => {
                Response::error(
                    ErrorCode::CreateFailed,
                    "executable file not found in $PATH: missing-binary",
                )
            }
            Request::Create {
                container_id,
                config,
                ..
            } => {
                assert_eq!(
                    config.rootfs(),
                    Path::new(&format!("{SHARE_MOUNT}/{container_id}/rootfs"))
                );
                shared.0.lock().unwrap().config = Some(*config);
                Response::Created { pid: 1 }
            }
            Request::Start { .. } => {
                start(shared);
                Response::Ok
            }
            Request::Signal { signal, .. } => {
                if let Some(pid) = shared.0.lock().unwrap().child_pid {
                    // SAFETY: kill takes no pointers; the child is not
                    // reaped before its exit is recorded.
                    unsafe { libc::kill(pid as i32, signal) };
                }
                Response::Ok
            }
            Request::Wait { .. } => {
                match mode {
                    "panic_in_wait" => {
                        println!("Kernel panic - not syncing: Attempted to kill init!");
                        send_event(Event::Reset);
                        std::process::exit(1);
                    }
                    // Like a guest reset: connections go first, the VMM
                    // exits (cleanly) a moment later.
                    "reset_in_wait" => {
                        let _ = conn.shutdown(Shutdown::Both);
                        println!("reboot: Restarting system");
                        thread::sleep(std::time::Duration::from_millis(300));
                        std::process::exit(0);
                    }
                    // The agent drops the connection but the VM stays up.
                    "drop_wait" => return,
                    _ => {}
                }
                let (lock, cv) = &**shared;
                let agent = cv
                    .wait_while(lock.lock().unwrap(), |a| a.exit.is_none())
                    .unwrap();
                Response::Exited {
                    status: agent.exit.unwrap(),
                }
            }
            Request::PowerOff => {
                wire::send(&mut conn, &Response::Ok).unwrap();
                let _ = std::fs::remove_file(&shared.0.lock().unwrap().socket);
                println!("reboot: Restarting system");
                send_event(Event::PowerOff);
                std::process::exit(0);
            }
            _ => Response::Ok,
        };
        if wire::send(&mut conn, &answer).is_err() {
            return;
        }
    }
}

/// Host path of a guest path under the share.
fn host_path(share: &Path, guest: &str) -> PathBuf {
    share.join(
        guest
            .strip_prefix(SHARE_MOUNT)
            .unwrap()
            .trim_start_matches('/'),
    )
}

/// Socket → pipe with read/write. Not `io::copy`: it splices, and a splice
/// from a socket into a pipe keeps the pipe locked while it waits for more
/// socket data, so the process cannot read what was already moved.
fn plain_copy(mut from: UnixStream, mut to: impl Write) {
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = from.read(&mut buf) {
        if to.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

fn copy(mut from: impl Read + Send + 'static, to: UnixStream) -> JoinHandle<()> {
    thread::spawn(move || {
        let _ = io::copy(&mut from, &mut &to);
        let _ = to.shutdown(Shutdown::Write);
    })
}

/// The init's argv.
fn args(config: &ContainerConfig) -> Vec<String> {
    config
        .process()
        .and_then(|p| p.args().clone())
        .unwrap_or_default()
}

fn start(shared: &Shared) {
    let mut agent = shared.0.lock().unwrap();
    let config = agent.config.clone().unwrap();
    let args = args(&config);
    let env = config
        .process()
        .and_then(|p| p.env().clone())
        .unwrap_or_default();
    let mut child: Child = Command::new(&args[0])
        .args(&args[1..])
        .current_dir(host_path(&agent.share, &config.rootfs().to_string_lossy()))
        .env_clear()
        .envs(env.iter().filter_map(|e| e.split_once('=')))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the process");
    agent.child_pid = Some(child.id());
    let mut outputs = Vec::new();
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let (input, output) = match agent.streams.remove(&Stream::Tty) {
        Some(tty) => (Some(tty.try_clone().unwrap()), Some(tty)),
        None => (
            agent.streams.remove(&Stream::Stdin),
            agent.streams.remove(&Stream::Stdout),
        ),
    };
    if let (Some(conn), Some(to)) = (input, stdin) {
        thread::spawn(move || plain_copy(conn, to));
    }
    outputs.extend(output.zip(stdout).map(|(conn, from)| copy(from, conn)));
    outputs.extend(
        agent
            .streams
            .remove(&Stream::Stderr)
            .zip(stderr)
            .map(|(c, f)| copy(f, c)),
    );
    drop(agent);
    let shared = shared.clone();
    thread::spawn(move || {
        let status = child.wait().unwrap();
        for t in outputs {
            let _ = t.join();
        }
        let status = match status.signal() {
            Some(s) => ExitStatus::Signal(s),
            None => ExitStatus::Code(status.code().unwrap_or(255)),
        };
        let (lock, cv) = &*shared;
        lock.lock().unwrap().exit = Some(status);
        cv.notify_all();
    });
}
