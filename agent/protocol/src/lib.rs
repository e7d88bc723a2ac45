//! Wire types shared by `hull-agent` (in the guest) and the hull host side.
//!
//! Today this holds the boot-time contract: the guest event port through which
//! the agent tells the VMM it is ready or wants the VM powered off, and the
//! ready line it prints on the console; the vsock control protocol
//! ([`wire`]) and the container description it carries ([`container`]).

/// Protocol version; bumped on any incompatible change to what is in this crate.
pub const PROTOCOL_VERSION: u32 = 2;

pub mod container;
pub mod fdpass;
pub mod seccomp;

/// virtio-fs tag of the sandbox's shared directory (container rootfs and
/// bind-mount sources live under it).
pub const SHARE_TAG: &str = "hullshare";
/// Where the agent mounts [`SHARE_TAG`] in the guest.
pub const SHARE_MOUNT: &str = "/run/hull/share";
pub mod wire;

/// x86 I/O port the agent writes one byte to, to notify the VMM (the same
/// port QEMU's `isa-debug-exit` uses by convention). Writes are one byte, a
/// [`GuestEvent`] code.
pub const EVENT_PORT: u16 = 0xf4;

/// Notifications the agent sends to the VMM on [`EVENT_PORT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum GuestEvent {
    /// The agent finished its early set-up and is ready.
    Ready = 1,
    /// The agent asks for the VM to be powered off now (guest data is synced).
    PowerOff = 2,
}

impl GuestEvent {
    /// Parses the byte the guest wrote; `None` for anything unknown.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Ready),
            2 => Some(Self::PowerOff),
            _ => None,
        }
    }
}

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

    #[test]
    fn guest_events_parse() {
        assert_eq!(GuestEvent::from_byte(1), Some(GuestEvent::Ready));
        assert_eq!(
            GuestEvent::from_byte(GuestEvent::PowerOff as u8),
            Some(GuestEvent::PowerOff)
        );
        assert_eq!(GuestEvent::from_byte(0), None);
        assert_eq!(GuestEvent::from_byte(0xff), None);
    }
}
