//! Wire types shared by `hull-agent` (in the guest) and the hull host side.
//!
//! Today this holds the ready line the agent prints on the console (a log
//! for people and the e2e tests; the host learns readiness from the VMM's
//! typed event), the vsock control protocol ([`wire`]) and the container
//! description it carries ([`container`]). The guest event port belongs to
//! the VMM (crate `guest-abi`) and is only re-exported here.

/// Protocol version; bumped on any incompatible change to what is in this crate.
pub const PROTOCOL_VERSION: u32 = 3;

pub mod container;
pub mod fdpass;
pub mod network;
pub mod seccomp;

/// virtio-fs tag of the sandbox's shared directory (container rootfs and
/// bind-mount sources live under it).
pub const SHARE_TAG: &str = "hullshare";
/// Where the agent mounts [`SHARE_TAG`] in the guest.
pub const SHARE_MOUNT: &str = "/run/hull/share";
pub mod wire;

/// The event port is the VMM's ABI (crate `guest-abi`); re-exported here
/// for the agent's existing users.
pub use guest_abi::{GuestEvent, EVENT_PORT};

/// Start of the line the agent prints on the console when it is ready.
pub const READY_LINE_PREFIX: &str = "hull-agent: ready";

/// What the agent reports in its ready line: the guest's CLOCK_BOOTTIME, the
/// CPUs and memory the guest kernel sees, the virtio devices that have a
/// driver bound (by virtio device id), and how many bytes it could read from
/// /dev/hwrng (0 when there is no hardware RNG).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub boottime_us: u64,
    pub cpus: u32,
    pub mem_total_kib: u64,
    pub virtio: Vec<u32>,
    pub hwrng_bytes: u32,
}

/// Formats the ready line (without the newline).
pub fn ready_line(ready: &Ready) -> String {
    let virtio = if ready.virtio.is_empty() {
        "-".to_string()
    } else {
        ready
            .virtio
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "{READY_LINE_PREFIX} boottime_us={} cpus={} mem_total_kib={} virtio={virtio} hwrng_bytes={}",
        ready.boottime_us, ready.cpus, ready.mem_total_kib, ready.hwrng_bytes
    )
}

/// Parses a ready line; `None` unless it is one, complete and well formed.
pub fn parse_ready_line(line: &str) -> Option<Ready> {
    let rest = line.trim_end().strip_prefix(READY_LINE_PREFIX)?;
    let mut fields = rest.split_whitespace();
    let mut field = |name: &str| fields.next()?.strip_prefix(name)?.strip_prefix('=');
    let boottime_us = field("boottime_us")?.parse().ok()?;
    let cpus = field("cpus")?.parse().ok()?;
    let mem_total_kib = field("mem_total_kib")?.parse().ok()?;
    let virtio = match field("virtio")? {
        "-" => Vec::new(),
        list => list
            .split(',')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?,
    };
    let hwrng_bytes = field("hwrng_bytes")?.parse().ok()?;
    Some(Ready {
        boottime_us,
        cpus,
        mem_total_kib,
        virtio,
        hwrng_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_round_trips() {
        let mut ready = Ready {
            boottime_us: 123_456,
            cpus: 2,
            mem_total_kib: 500_000,
            virtio: vec![],
            hwrng_bytes: 0,
        };
        assert_eq!(parse_ready_line(&ready_line(&ready)), Some(ready.clone()));
        ready.virtio = vec![4, 19];
        ready.hwrng_bytes = 16;
        assert!(ready_line(&ready).contains(" virtio=4,19 hwrng_bytes=16"));
        assert_eq!(parse_ready_line(&ready_line(&ready)), Some(ready));
    }

    #[test]
    fn malformed_ready_lines_are_refused() {
        for bad in [
            "hull-agent: ready boottime_us=x cpus=1 mem_total_kib=1 virtio=- hwrng_bytes=0",
            "hull-agent: ready boottime_us=1 cpus=1 mem_total_kib=1 virtio=4,x hwrng_bytes=0",
            "hull-agent: ready boottime_us=1 cpus=1",
            "something else",
        ] {
            assert_eq!(parse_ready_line(bad), None, "{bad}");
        }
    }
}
