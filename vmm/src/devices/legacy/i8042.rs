//! Just enough of the i8042 keyboard controller for the guest to reset the
//! machine: a write of 0xfe (pulse reset line) to the command port 0x64.
//! Linux does this for `reboot=k`, and on panic with `panic=-1`.

use crate::devices::bus::BusDevice;
use crate::event::{VmEvent, VmEvents};

const COMMAND_OFFSET: u64 = 4;
const CMD_RESET_CPU: u8 = 0xfe;

pub struct I8042 {
    events: VmEvents,
}

impl I8042 {
    pub fn new(events: VmEvents) -> Self {
        Self { events }
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        // Status 0: output buffer empty, input buffer empty, so the guest's
        // "wait until the controller is ready" loops end at once.
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset == COMMAND_OFFSET && data == [CMD_RESET_CPU] {
            self.events.send(VmEvent::Reset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_command_raises_reset() {
        let (events, rx) = VmEvents::channel();
        let mut dev = I8042::new(events);
        dev.write(0, &[CMD_RESET_CPU]);
        dev.write(COMMAND_OFFSET, &[0xaa]);
        assert!(rx.try_recv().is_err());
        dev.write(COMMAND_OFFSET, &[CMD_RESET_CPU]);
        assert!(matches!(rx.try_recv(), Ok(VmEvent::Reset)));
    }
}
