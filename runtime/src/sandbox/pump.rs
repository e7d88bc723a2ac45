//! Byte pumps between host file descriptors and stdio stream connections,
//! and the [`Canceller`] that stops an input pump blocked on the host side.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

const CHUNK_BYTES: usize = 32 * 1024;

/// Wakes [`pump_input`] out of its wait for host input. Cancelling (or
/// dropping the canceller) makes the paired [`CancelToken`] readable.
#[derive(Debug)]
pub struct Canceller(UnixStream);

/// The pump's side of a [`Canceller`].
#[derive(Debug)]
pub struct CancelToken(UnixStream);

/// A connected canceller and token.
pub fn cancel_pair() -> io::Result<(Canceller, CancelToken)> {
    let (a, b) = UnixStream::pair()?;
    Ok((Canceller(a), CancelToken(b)))
}

impl Canceller {
    pub fn cancel(&self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

/// Whether an error means the other side went away (not worth reporting).
pub fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::NotConnected
    )
}

/// Waits until `fd` or the token is readable; true when it is `fd`.
pub(crate) fn wait_readable(fd: &impl AsFd, token: &CancelToken) -> io::Result<bool> {
    let mut fds = [
        PollFd::new(fd.as_fd(), PollFlags::POLLIN),
        PollFd::new(token.0.as_fd(), PollFlags::POLLIN),
    ];
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => break,
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
    // No flags known to nix (None) still means something happened.
    let ready = |p: &PollFd| p.revents().is_none_or(|r| !r.is_empty());
    if ready(&fds[1]) {
        return Ok(false);
    }
    Ok(ready(&fds[0]))
}

/// Copies host input `src` into stream `dst` until `src` ends, the stream's
/// reader goes away or `token` is cancelled. At the end of `src` it
/// half-closes `dst` when `half_close` (stdin's EOF reaches the process).
/// Returns the bytes copied.
pub fn pump_input(
    src: &mut (impl Read + AsFd),
    dst: &UnixStream,
    token: &CancelToken,
    half_close: bool,
) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut total = 0u64;
    loop {
        if !wait_readable(src, token)? {
            return Ok(total);
        }
        let n = match src.read(&mut buf) {
            Ok(0) => {
                if half_close {
                    let _ = dst.shutdown(Shutdown::Write);
                }
                return Ok(total);
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        match (&*dst).write_all(&buf[..n]) {
            Ok(()) => total += n as u64,
            Err(e) if is_gone(&e) => return Ok(total),
            Err(e) => return Err(e),
        }
    }
}

/// Copies stream `src` to host output `dst` until the stream ends. If `dst`
/// fails (a closed pipe), the stream is shut down so the agent sees its
/// reader gone, and the error is returned.
pub fn pump_output(src: &UnixStream, dst: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut total = 0u64;
    loop {
        let n = match (&*src).read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_gone(&e) => return Ok(total),
            Err(e) => return Err(e),
        };
        if let Err(e) = dst.write_all(&buf[..n]).and_then(|()| dst.flush()) {
            let _ = src.shutdown(Shutdown::Both);
            return Err(e);
        }
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;

    #[test]
    fn input_is_copied_then_half_closed_at_eof() {
        let (mut host_in, mut feeder) = UnixStream::pair().unwrap();
        let (stream, mut agent) = UnixStream::pair().unwrap();
        let (_canceller, token) = cancel_pair().unwrap();
        let t = thread::spawn(move || {
            let n = pump_input(&mut host_in, &stream, &token, true);
            (n, stream)
        });
        feeder.write_all(b"hello\n").unwrap();
        drop(feeder);
        // The agent side reads everything, then sees EOF: the half close.
        let mut got = Vec::new();
        agent.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hello\n");
        let (n, mut stream) = t.join().unwrap();
        assert_eq!(n.unwrap(), 6);
        // Only the write half was closed: the agent can still send.
        agent.write_all(b"x").unwrap();
        let mut x = [0u8; 1];
        stream.read_exact(&mut x).unwrap();
    }

    #[test]
    fn without_half_close_eof_leaves_the_stream_open() {
        let (mut host_in, feeder) = UnixStream::pair().unwrap();
        let (stream, agent) = UnixStream::pair().unwrap();
        let (_canceller, token) = cancel_pair().unwrap();
        drop(feeder);
        assert_eq!(pump_input(&mut host_in, &stream, &token, false).unwrap(), 0);
        agent.set_nonblocking(true).unwrap();
        let e = (&agent).read(&mut [0u8; 1]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "stream must stay open");
    }

    #[test]
    fn cancel_stops_an_input_pump_waiting_for_host_input() {
        let (mut host_in, _feeder) = UnixStream::pair().unwrap();
        let (stream, agent) = UnixStream::pair().unwrap();
        let (canceller, token) = cancel_pair().unwrap();
        let t = thread::spawn(move || {
            let n = pump_input(&mut host_in, &stream, &token, true);
            (n, stream)
        });
        canceller.cancel();
        let (n, _stream) = t.join().unwrap();
        assert_eq!(n.unwrap(), 0);
        agent.set_nonblocking(true).unwrap();
        assert!(
            (&agent).read(&mut [0u8; 1]).is_err(),
            "no half close on cancel"
        );
    }

    #[test]
    fn input_stops_quietly_when_the_process_side_is_gone() {
        let (mut host_in, mut feeder) = UnixStream::pair().unwrap();
        let (stream, agent) = UnixStream::pair().unwrap();
        let (_canceller, token) = cancel_pair().unwrap();
        drop(agent);
        feeder.write_all(b"data").unwrap();
        assert_eq!(pump_input(&mut host_in, &stream, &token, true).unwrap(), 0);
    }

    #[test]
    fn output_is_copied_until_the_stream_ends() {
        let (stream, mut agent) = UnixStream::pair().unwrap();
        let t = thread::spawn(move || {
            let mut out = Vec::new();
            pump_output(&stream, &mut out).map(|n| (n, out))
        });
        agent.write_all(b"out 1\n").unwrap();
        agent.write_all(&[b'z'; 100_000]).unwrap();
        agent.shutdown(Shutdown::Write).unwrap();
        let (n, out) = t.join().unwrap().unwrap();
        assert_eq!(n, 100_006);
        assert_eq!(&out[..6], b"out 1\n");
    }

    #[test]
    fn a_failing_host_output_shuts_the_stream() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (stream, mut agent) = UnixStream::pair().unwrap();
        agent.write_all(b"x").unwrap();
        assert!(pump_output(&stream, &mut Closed).is_err());
        let mut rest = Vec::new();
        assert_eq!(agent.read_to_end(&mut rest).unwrap(), 0, "agent sees EOF");
    }
}
