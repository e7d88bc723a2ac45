//! The guest-to-VMM ABI of hull, owned by the VMM: one x86 I/O port the
//! guest agent writes single bytes to. `vmm` decodes the writes;
//! `hull-agent` makes them. Nothing else is here, so neither side pulls in
//! the other's dependencies.

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

    /// The byte the guest writes.
    pub fn to_byte(self) -> u8 {
        self as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_events_round_trip_and_unknown_bytes_are_refused() {
        for event in [GuestEvent::Ready, GuestEvent::PowerOff] {
            assert_eq!(GuestEvent::from_byte(event.to_byte()), Some(event));
        }
        assert_eq!(GuestEvent::from_byte(1), Some(GuestEvent::Ready));
        assert_eq!(GuestEvent::from_byte(2), Some(GuestEvent::PowerOff));
        assert_eq!(GuestEvent::from_byte(0), None);
        assert_eq!(GuestEvent::from_byte(0xff), None);
    }
}
