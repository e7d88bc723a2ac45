//! `hull events [--stats] [--interval DURATION] ID`: the container's
//! resource usage, measured in the guest, as runc's `events` prints it:
//! one `stats` event with `--stats`, else one every interval (default 5s)
//! until the container stops.

use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;

use crate::Global;
use agent_protocol::container::Stats;
use runtime::state::ContainerStatus;

/// `events [--stats] [--interval DURATION] ID` (runc's: the interval is a
/// duration, `5s`, where liboci-cli's takes whole seconds).
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// Display the container's stats once
    #[arg(long)]
    pub stats: bool,
    /// Stats collection interval: 5s, 500ms, 1m, or seconds
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Container identifier
    #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub container_id: String,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

pub fn main(global: &Global, args: &Args) -> anyhow::Result<i32> {
    let id = args.container_id.as_str();
    let interval = args.interval;
    let c = super::container::load(global, id)?;
    c.require(ContainerStatus::can_kill)?;
    let mut agent = c.agent()?;
    loop {
        let stats = c.stats(&mut agent)?;
        println!("{}", event(id, &stats));
        if args.stats {
            return Ok(0);
        }
        std::thread::sleep(interval);
        if super::container::load(global, id)?.status == ContainerStatus::Stopped {
            return Ok(0);
        }
    }
}

/// A runc-shaped `stats` event.
pub fn event(id: &str, s: &Stats) -> serde_json::Value {
    json!({
        "type": "stats",
        "id": id,
        "data": {
            "cpu": { "usage": { "total": s.cpu_usage_ns } },
            "memory": { "usage": { "usage": s.memory_usage_bytes, "limit": s.memory_limit_bytes } },
            "pids": { "current": s.pids },
        }
    })
}

/// `5s`, `500ms`, `1m`, `2h` or plain seconds.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => bail!("invalid duration {s:?}"),
    };
    if secs <= 0.0 || !secs.is_finite() {
        bail!("duration must be greater than 0");
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_the_event_shape() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        for bad in ["0", "x", "5y", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let s = Stats {
            cpu_usage_ns: 7,
            memory_usage_bytes: 8,
            memory_limit_bytes: 9,
            pids: 2,
        };
        let v = event("c1", &s);
        assert_eq!(v["type"], "stats");
        assert_eq!(v["data"]["cpu"]["usage"]["total"], 7);
        assert_eq!(v["data"]["memory"]["usage"]["usage"], 8);
        assert_eq!(v["data"]["pids"]["current"], 2);
    }
}
