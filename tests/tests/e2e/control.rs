//! The agent's control channel over the user-space virtio-vsock device, in a
//! real guest: hybrid vsock CONNECT, the version handshake, power-off.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use agent_protocol::wire::{self, ErrorCode, Request, Response, AGENT_PORT};
use agent_protocol::PROTOCOL_VERSION;
use hull_e2e::{boot_args, Live, Scratch};

#[test]
fn host_talks_to_the_agent_over_vsock_and_powers_it_off() {
    let scratch = Scratch::tmp("vsock");
    let uds = scratch.0.join("v.sock");
    let mut args = boot_args(2, 256);
    args.extend(["--vsock".into(), format!("3:{}", uds.display())]);
    let mut vm = Live::spawn(&args);
    let ready = vm.wait_ready();
    assert!(ready.is_some(), "agent never ready: {:?}", vm.finish());
    assert!(
        ready.iter().all(|r| r.virtio.contains(&19)),
        "vsock driver not bound: {ready:?}"
    );

    // Hybrid vsock: CONNECT <port>, then OK <host port>.
    let stream = UnixStream::connect(&uds).expect("connect to the vsock socket");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    writer
        .write_all(format!("CONNECT {AGENT_PORT}\n").as_bytes())
        .expect("write CONNECT");
    let mut ok = String::new();
    reader.read_line(&mut ok).expect("read OK");
    assert!(ok.starts_with("OK ") && ok.ends_with('\n'), "{ok:?}");

    let mut ask = |req: Request| -> Response {
        wire::send(&mut writer, &req).expect("send");
        wire::recv(&mut reader)
            .expect("recv")
            .expect("agent closed the channel")
    };
    // Anything before a good hello is refused, as is another version.
    let early = ask(Request::PowerOff);
    assert!(
        matches!(
            early,
            Response::Error {
                code: ErrorCode::HelloRequired,
                ..
            }
        ),
        "{early:?}"
    );
    let wrong = ask(Request::Hello {
        version: PROTOCOL_VERSION + 1,
    });
    assert!(
        matches!(
            wrong,
            Response::Error {
                code: ErrorCode::VersionMismatch,
                ..
            }
        ),
        "{wrong:?}"
    );
    match ask(Request::Hello {
        version: PROTOCOL_VERSION,
    }) {
        Response::Hello { version, ready } => {
            assert_eq!(version, PROTOCOL_VERSION);
            assert_eq!(ready.cpus, 2);
        }
        other => panic!("no hello: {other:?}"),
    }
    assert_eq!(ask(Request::PowerOff), Response::Ok);

    let run = vm.finish();
    assert!(!run.timed_out, "{run:?}");
    assert_eq!(
        run.code(),
        Some(0),
        "power-off through the agent must exit 0: {run:?}"
    );
    assert!(
        !uds.exists(),
        "the vsock socket must be removed when the VM ends"
    );
}
