//! Wire types shared by `hull-agent` (in the guest) and the hull host side.
//!
//! Today this holds the boot-time contract: the guest event port through which
//! the agent tells the VMM it is ready or wants the VM powered off, and the
//! ready line it prints on the console. The vsock control protocol is added
//! here when the agent starts serving it.

/// Protocol version; bumped on any incompatible change to what is in this crate.
pub const PROTOCOL_VERSION: u32 = 1;

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

/// Start of the line the agent prints on the console when it is ready, followed
/// by `boottime_us=<CLOCK_BOOTTIME in microseconds>`.
pub const READY_LINE_PREFIX: &str = "hull-agent: ready";

/// Formats the ready line (without the newline).
pub fn ready_line(boottime_us: u64) -> String {
    format!("{READY_LINE_PREFIX} boottime_us={boottime_us}")
}

/// Parses a ready line, returning the guest's CLOCK_BOOTTIME in microseconds.
pub fn parse_ready_line(line: &str) -> Option<u64> {
    let rest = line.trim_end().strip_prefix(READY_LINE_PREFIX)?;
    rest.trim_start().strip_prefix("boottime_us=")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_round_trips() {
        assert_eq!(parse_ready_line(&ready_line(123_456)), Some(123_456));
        assert_eq!(parse_ready_line("hull-agent: ready boottime_us=x"), None);
        assert_eq!(parse_ready_line("something else"), None);
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
