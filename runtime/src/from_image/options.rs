//! What `hull run --image`/`--rootfs` takes besides the image, in the
//! spellings of `podman run`/`docker run`, parsed and checked.

use std::path::{Path, PathBuf};

use super::FromImageError;

/// `--network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Loopback only.
    None,
    /// A bridge with NAT, ports published with `-p`.
    Default,
}

impl Network {
    pub fn parse(text: &str) -> Result<Self, FromImageError> {
        match text {
            "none" => Ok(Self::None),
            "default" | "bridge" => Ok(Self::Default),
            other => Err(FromImageError::BadOption(format!(
                "--network {other:?}: expected none or default (a VM cannot share the host's network)"
            ))),
        }
    }
}

/// `-v HOST:CTR[:ro|rw]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub host: PathBuf,
    pub container: String,
    pub readonly: bool,
}

impl Volume {
    pub fn parse(text: &str) -> Result<Self, FromImageError> {
        let bad = |why: &str| FromImageError::BadOption(format!("-v {text:?}: {why}"));
        let mut parts = text.split(':');
        let (Some(host), Some(container)) = (parts.next(), parts.next()) else {
            return Err(bad("expected HOST:CONTAINER[:ro]"));
        };
        let readonly = match parts.next() {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(other) => return Err(bad(&format!("unknown option {other:?} (ro or rw)"))),
        };
        if parts.next().is_some() {
            return Err(bad("expected HOST:CONTAINER[:ro]"));
        }
        if !host.starts_with('/') {
            return Err(bad(
                "the host path must be absolute (named volumes are not supported)",
            ));
        }
        if !container.starts_with('/') {
            return Err(bad("the container path must be absolute"));
        }
        if !Path::new(host).exists() {
            return Err(bad(&format!("{host} does not exist")));
        }
        Ok(Self {
            host: host.into(),
            container: container.into(),
            readonly,
        })
    }
}

/// `-p [IP:]HOST:CTR[/tcp|udp]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub host_ip: Option<String>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

impl Publish {
    pub fn parse(text: &str) -> Result<Self, FromImageError> {
        let bad = |why: &str| FromImageError::BadOption(format!("-p {text:?}: {why}"));
        let (ports, protocol) = match text.rsplit_once('/') {
            Some((p, proto @ ("tcp" | "udp"))) => (p, proto),
            Some(_) => return Err(bad("the protocol is tcp or udp")),
            None => (text, "tcp"),
        };
        let fields: Vec<&str> = ports.split(':').collect();
        let (ip, host, ctr) = match fields.as_slice() {
            [host, ctr] => (None, *host, *ctr),
            [ip, host, ctr] => (Some(ip.to_string()), *host, *ctr),
            _ => return Err(bad("expected [IP:]HOST_PORT:CONTAINER_PORT")),
        };
        let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
        let (Some(host_port), Some(container_port)) = (port(host), port(ctr)) else {
            return Err(bad("ports are numbers from 1 to 65535"));
        };
        Ok(Self {
            host_ip: ip,
            host_port,
            container_port,
            protocol: protocol.into(),
        })
    }
}

/// `--cpus N.N` as a CFS quota over a 100 ms period.
pub fn cpu_quota(text: &str) -> Result<(i64, u64), FromImageError> {
    const PERIOD_US: u64 = 100_000;
    let cpus: f64 = text
        .trim()
        .parse()
        .ok()
        .filter(|c: &f64| c.is_finite() && *c > 0.0 && *c <= 1024.0)
        .ok_or_else(|| {
            FromImageError::BadOption(format!("--cpus {text:?}: a number of CPUs above 0"))
        })?;
    let quota = (cpus * PERIOD_US as f64).round() as i64;
    Ok((quota.max(1000), PERIOD_US))
}

/// `-e KEY=VALUE`, or `-e KEY` for this process's value (left out when it
/// has none, as Docker does).
pub fn env_entry(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, FromImageError> {
    let key = text.split_once('=').map_or(text, |(k, _)| k);
    if key.is_empty() || key.contains('\0') || text.contains('\0') {
        return Err(FromImageError::BadOption(format!(
            "-e {text:?}: expected KEY=VALUE"
        )));
    }
    Ok(match text.contains('=') {
        true => Some(text.to_string()),
        false => lookup(key).map(|v| format!("{key}={v}")),
    })
}

/// Everything but the image: what the spec is generated from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOptions {
    /// After `--`: replaces the image's Cmd (the Entrypoint stays).
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub volumes: Vec<Volume>,
    pub tty: bool,
    pub hostname: Option<String>,
    /// Bytes.
    pub memory: Option<i64>,
    /// CFS quota and period, microseconds.
    pub cpu: Option<(i64, u64)>,
}
