//! hull's guest event port: the agent writes one byte, a
//! [`guest_abi::GuestEvent`], to say it is ready or to power the VM off.
//! There is no ACPI in the guest, so this is the clean power-off path; a reset
//! without it means the kernel gave up (panic) or something rebooted it.

use guest_abi::GuestEvent;

use crate::clock::monotonic_ns;
use crate::devices::bus::BusDevice;
use crate::event::{VmEvent, VmEvents};

pub struct EventPort {
    events: VmEvents,
    /// Writes that were not a known event.
    pub unknown_writes: u64,
}

impl EventPort {
    pub fn new(events: VmEvents) -> Self {
        Self {
            events,
            unknown_writes: 0,
        }
    }
}

impl BusDevice for EventPort {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, _offset: u64, data: &[u8]) {
        match data {
            [byte] => match GuestEvent::from_byte(*byte) {
                Some(GuestEvent::Ready) => {
                    self.events.send(VmEvent::AgentReady { ns: monotonic_ns() })
                }
                Some(GuestEvent::PowerOff) => self.events.send(VmEvent::PowerOff),
                None => self.unknown_writes += 1,
            },
            _ => self.unknown_writes += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_bytes_become_events_and_others_are_counted() {
        let (events, rx) = VmEvents::channel();
        let mut port = EventPort::new(events);
        port.write(0, &[GuestEvent::Ready.to_byte()]);
        port.write(0, &[GuestEvent::PowerOff.to_byte()]);
        port.write(0, &[0x77]);
        port.write(0, &[1, 2]);
        assert!(matches!(rx.try_recv(), Ok(VmEvent::AgentReady { ns }) if ns > 0));
        assert!(matches!(rx.try_recv(), Ok(VmEvent::PowerOff)));
        assert!(rx.try_recv().is_err());
        assert_eq!(port.unknown_writes, 2);
    }
}
