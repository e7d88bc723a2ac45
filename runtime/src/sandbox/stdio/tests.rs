use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use agent_protocol::wire::ErrorCode;

use super::*;

fn file(s: UnixStream) -> File {
    File::from(OwnedFd::from(s))
}

/// The agent's side of a stream connection: reads the hello, answers.
fn agent_answers(answer: Option<Response>) -> (UnixStream, thread::JoinHandle<StreamHello>) {
    let (host, mut agent) = UnixStream::pair().unwrap();
    let t = thread::spawn(move || {
        let hello: StreamHello = wire::recv(&mut agent).unwrap().unwrap();
        if let Some(a) = answer {
            wire::send(&mut agent, &a).unwrap();
            agent.write_all(b"payload").unwrap();
        }
        hello
    });
    (host, t)
}

#[test]
fn greet_sends_the_hello_and_wants_ok() {
    let (conn, agent) = agent_answers(Some(Response::Ok));
    let mut conn = greet(conn, "c", Some("e"), Stream::Stderr).unwrap();
    let hello = agent.join().unwrap();
    assert_eq!(hello.version, PROTOCOL_VERSION);
    assert_eq!(
        (hello.container_id.as_str(), hello.exec_id.as_deref()),
        ("c", Some("e"))
    );
    assert_eq!(hello.stream, Stream::Stderr);
    let mut rest = String::new();
    conn.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "payload", "stream bytes follow the answer untouched");
}

#[test]
fn greet_reports_refusals_and_closes() {
    let refusal = Response::error(ErrorCode::NotFound, "no container c");
    let (conn, _agent) = agent_answers(Some(refusal));
    let e = greet(conn, "c", None, Stream::Stdin).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Stdin stream refused by the agent: no container c"
    );
    let (conn, _agent) = agent_answers(None);
    let e = greet(conn, "c", None, Stream::Stdout).unwrap_err();
    assert!(
        matches!(
            e,
            StdioError::Closed {
                stream: Stream::Stdout
            }
        ),
        "{e:?}"
    );
}

#[test]
fn relays_copy_all_three_streams_and_half_close_stdin() {
    let (host_in, mut typed) = UnixStream::pair().unwrap();
    let (host_out, mut out_seen) = UnixStream::pair().unwrap();
    let (host_err, mut err_seen) = UnixStream::pair().unwrap();
    let (stdin_h, mut stdin_a) = UnixStream::pair().unwrap();
    let (stdout_h, mut stdout_a) = UnixStream::pair().unwrap();
    let (stderr_h, mut stderr_a) = UnixStream::pair().unwrap();
    let relays = Relays::start(
        vec![
            (Stream::Stdin, stdin_h),
            (Stream::Stdout, stdout_h),
            (Stream::Stderr, stderr_h),
        ],
        HostStdio {
            stdin: Some(file(host_in)),
            stdout: file(host_out),
            stderr: file(host_err),
        },
    )
    .unwrap();
    // A `cat` in the guest: stdin to stdout until EOF, then a word on stderr.
    let agent = thread::spawn(move || {
        let mut input = Vec::new();
        stdin_a.read_to_end(&mut input).unwrap();
        stdout_a.write_all(&input).unwrap();
        stderr_a.write_all(b"done\n").unwrap();
    });
    typed.write_all(b"line one\nline two\n").unwrap();
    drop(typed);
    agent.join().unwrap();
    relays.finish(Duration::from_secs(30)).unwrap();
    let mut out = String::new();
    out_seen.read_to_string(&mut out).unwrap();
    assert_eq!(out, "line one\nline two\n");
    let mut err = String::new();
    err_seen.read_to_string(&mut err).unwrap();
    assert_eq!(err, "done\n");
}

#[test]
fn finish_cuts_streams_left_open_after_the_grace() {
    let (host_out, _out_seen) = UnixStream::pair().unwrap();
    let (host_err, _err_seen) = UnixStream::pair().unwrap();
    let (host_in, _typed) = UnixStream::pair().unwrap();
    let (stdout_h, _stdout_a) = UnixStream::pair().unwrap();
    let (tty_h, _tty_a) = UnixStream::pair().unwrap();
    let relays = Relays::start(
        vec![(Stream::Stdout, stdout_h), (Stream::Tty, tty_h)],
        HostStdio {
            stdin: Some(file(host_in)),
            stdout: file(host_out),
            stderr: file(host_err),
        },
    )
    .unwrap();
    // Nobody closes anything: finish must still return.
    relays.finish(Duration::from_millis(20)).unwrap();
}
