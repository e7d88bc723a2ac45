//! TCP request/response latency (what iperf3 cannot measure):
//!
//!   hull-bench netrr server [--listen ADDR:PORT]
//!   hull-bench netrr client --connect ADDR:PORT [--count N] [--warmup N]
//!
//! The server echoes every byte it reads, one connection per thread. The
//! client does `--warmup` then `--count` round trips of one byte each (with
//! Nagle off on both ends) and prints one line,
//! `netrr: count=N median_us=X p99_us=Y min_us=Z`. `--count 0` only
//! connects (a readiness probe).

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Where the server listens when not told.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:7777";
const DEFAULT_COUNT: usize = 10_000;
const DEFAULT_WARMUP: usize = 100;
/// A peer that drops SYNs (no route yet) fails the connect after this long
/// instead of the kernel's two minutes of retries.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Round-trip times, in microseconds, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub median_us: f64,
    pub p99_us: f64,
    pub min_us: f64,
}

/// The nearest-rank percentile `p` (0..=100) of sorted `samples`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summarises round-trip times in microseconds.
pub fn summarise(mut samples_us: Vec<f64>) -> Summary {
    samples_us.sort_by(f64::total_cmp);
    Summary {
        count: samples_us.len(),
        median_us: percentile(&samples_us, 50.0),
        p99_us: percentile(&samples_us, 99.0),
        min_us: samples_us.first().copied().unwrap_or(0.0),
    }
}

fn echo(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = [0u8; 1];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {
                if stream.write_all(&buf).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Serves echo connections forever.
pub fn server(listen: &str) -> Result<()> {
    let listener = TcpListener::bind(listen).with_context(|| format!("bind {listen}"))?;
    eprintln!("netrr: listening on {listen}");
    for stream in listener.incoming() {
        let stream = stream.context("accept")?;
        std::thread::spawn(move || echo(stream));
    }
    Ok(())
}

fn round_trip(stream: &mut TcpStream) -> Result<()> {
    stream.write_all(&[0x5a]).context("send")?;
    let mut buf = [0u8; 1];
    stream.read_exact(&mut buf).context("receive")?;
    if buf != [0x5a] {
        bail!("the server sent {:#x} back for 0x5a", buf[0]);
    }
    Ok(())
}

/// Measures `count` round trips after `warmup` unmeasured ones.
pub fn client(connect: &str, count: usize, warmup: usize) -> Result<Summary> {
    let addr = connect
        .to_socket_addrs()
        .with_context(|| format!("resolve {connect}"))?
        .next()
        .with_context(|| format!("{connect} has no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .with_context(|| format!("connect {connect}"))?;
    stream.set_nodelay(true)?;
    for _ in 0..warmup {
        round_trip(&mut stream)?;
    }
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let t0 = Instant::now();
        round_trip(&mut stream)?;
        samples.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    Ok(summarise(samples))
}

/// `hull-bench netrr ...`.
pub fn main(args: &[String]) -> Result<()> {
    let mut it = args.iter();
    let role = it.next().cloned().unwrap_or_default();
    let (mut addr, mut count, mut warmup) = (None, DEFAULT_COUNT, DEFAULT_WARMUP);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .with_context(|| format!("missing value for {flag}"))?;
        match flag.as_str() {
            "--listen" | "--connect" => addr = Some(value.clone()),
            "--count" => count = value.parse().context("--count")?,
            "--warmup" => warmup = value.parse().context("--warmup")?,
            other => bail!("unknown argument {other:?}"),
        }
    }
    match role.as_str() {
        "server" => server(addr.as_deref().unwrap_or(DEFAULT_LISTEN)),
        "client" => {
            let addr = addr.context("client needs --connect ADDR:PORT")?;
            let s = client(&addr, count, warmup)?;
            println!(
                "netrr: count={} median_us={:.1} p99_us={:.1} min_us={:.1}",
                s.count, s.median_us, s.p99_us, s.min_us
            );
            Ok(())
        }
        _ => bail!("usage: hull-bench netrr server [--listen A:P] | client --connect A:P [--count N] [--warmup N]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let s = summarise((1..=100).rev().map(f64::from).collect());
        assert_eq!(s.count, 100);
        assert_eq!(s.median_us, 50.0);
        assert_eq!(s.p99_us, 99.0);
        assert_eq!(s.min_us, 1.0);
        assert_eq!(summarise(vec![7.0]).p99_us, 7.0);
        assert_eq!(summarise(Vec::new()).median_us, 0.0);
    }

    #[test]
    fn a_client_measures_round_trips_against_a_server() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            echo(stream);
        });
        let s = client(&addr, 50, 5).unwrap();
        assert_eq!(s.count, 50);
        assert!(s.min_us > 0.0 && s.min_us <= s.median_us && s.median_us <= s.p99_us);
    }
}
