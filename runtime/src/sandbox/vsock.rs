//! Host side of hull's hybrid vsock: connect to the VM's Unix socket, write
//! `CONNECT <port>\n`, read `OK <host port>\n`; the socket then carries the
//! guest connection (`shutdown(Write)` is a half close).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// Longest handshake reply accepted (`OK 4294967295\n` is 14 bytes).
const MAX_REPLY_BYTES: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum VsockError {
    #[error("cannot connect to the VM's vsock socket {path}: {source}")]
    Connect { path: PathBuf, source: io::Error },
    #[error("vsock handshake for port {port}: {source}")]
    Io { port: u32, source: io::Error },
    #[error("the VM closed the connection to vsock port {port} (nothing listening there?)")]
    Closed { port: u32 },
    #[error("vsock port {port}: unexpected handshake reply {reply:?}")]
    Refused { port: u32, reply: String },
}

/// Opens a stream to guest vsock `port` through the VM's hybrid socket `uds`.
pub fn connect(uds: &Path, port: u32) -> Result<UnixStream, VsockError> {
    let mut stream = UnixStream::connect(uds).map_err(|source| VsockError::Connect {
        path: uds.to_path_buf(),
        source,
    })?;
    handshake(&mut stream, port)?;
    Ok(stream)
}

/// The `CONNECT`/`OK` exchange on a freshly connected stream. Reads the reply
/// a byte at a time so nothing after the newline is consumed; returns the
/// host-side port the VMM assigned.
pub fn handshake(stream: &mut UnixStream, port: u32) -> Result<u32, VsockError> {
    let io = |source| VsockError::Io { port, source };
    stream
        .write_all(format!("CONNECT {port}\n").as_bytes())
        .map_err(io)?;
    let mut reply = Vec::with_capacity(16);
    loop {
        let mut byte = [0u8; 1];
        match stream.read(&mut byte) {
            Ok(0) => return Err(VsockError::Closed { port }),
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if reply.len() < MAX_REPLY_BYTES => reply.push(byte[0]),
            Ok(_) => return Err(refused(port, &reply)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A reset from the VMM is how a refused port can look, too.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                return Err(VsockError::Closed { port })
            }
            Err(e) => return Err(io(e)),
        }
    }
    std::str::from_utf8(&reply)
        .ok()
        .and_then(|r| r.strip_prefix("OK "))
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| refused(port, &reply))
}

fn refused(port: u32, reply: &[u8]) -> VsockError {
    VsockError::Refused {
        port,
        reply: String::from_utf8_lossy(reply).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;
    use std::thread;

    use super::*;

    /// A fake VMM end: reads the CONNECT line, answers `reply`, then sends
    /// `after` (which must not be consumed by the handshake).
    fn peer(
        reply: &'static [u8],
        after: &'static [u8],
    ) -> (UnixStream, thread::JoinHandle<String>) {
        let (host, vmm) = UnixStream::pair().unwrap();
        let t = thread::spawn(move || {
            let mut r = io::BufReader::new(vmm.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let mut w = vmm;
            w.write_all(reply).unwrap();
            w.write_all(after).unwrap();
            line
        });
        (host, t)
    }

    #[test]
    fn handshake_reads_exactly_the_ok_line() {
        let (mut host, t) = peer(b"OK 1073741824\n", b"rest");
        assert_eq!(handshake(&mut host, 1024).unwrap(), 1_073_741_824);
        assert_eq!(t.join().unwrap(), "CONNECT 1024\n");
        let mut rest = [0u8; 4];
        host.read_exact(&mut rest).unwrap();
        assert_eq!(&rest, b"rest");
    }

    #[test]
    fn a_closed_or_odd_reply_is_an_error() {
        let (mut host, t) = peer(b"", b"");
        assert!(matches!(
            handshake(&mut host, 1025),
            Err(VsockError::Closed { port: 1025 })
        ));
        t.join().unwrap();
        let (mut host, _t) = peer(b"NO\n", b"");
        let e = handshake(&mut host, 7).unwrap_err();
        assert!(
            e.to_string().contains("unexpected handshake reply \"NO\""),
            "{e}"
        );
        let (mut host, _t) = peer(&[b'x'; 100], b"");
        assert!(matches!(
            handshake(&mut host, 7),
            Err(VsockError::Refused { .. })
        ));
    }

    #[test]
    fn connecting_to_a_missing_socket_names_it() {
        let e = connect(Path::new("/nonexistent/v.sock"), 1024).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/v.sock"), "{e}");
    }
}
