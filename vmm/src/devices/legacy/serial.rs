//! The 8250 UART at 0x3f8 (vm-superio's model), output to a file or stdout,
//! its interrupt delivered through a KVM irqfd.

use std::io::Write;

use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use crate::devices::bus::BusDevice;

/// Raises the serial IRQ by writing to an eventfd registered as a KVM irqfd.
pub struct IrqFdTrigger(pub EventFd);

impl Trigger for IrqFdTrigger {
    type E = std::io::Error;

    fn trigger(&self) -> Result<(), Self::E> {
        self.0.write(1)
    }
}

/// The console device on the port I/O bus.
pub struct SerialConsole {
    uart: Serial<IrqFdTrigger, vm_superio::serial::NoEvents, Box<dyn Write + Send>>,
    /// Writes the guest made that the output refused (e.g. a closed pipe).
    pub output_errors: u64,
}

impl SerialConsole {
    pub fn new(irq: EventFd, out: Box<dyn Write + Send>) -> Self {
        Self {
            uart: Serial::new(IrqFdTrigger(irq), out),
            output_errors: 0,
        }
    }

    /// Flushes what the guest wrote.
    pub fn flush(&mut self) {
        if self.uart.writer_mut().flush().is_err() {
            self.output_errors += 1;
        }
    }
}

impl BusDevice for SerialConsole {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if let [byte] = data {
            *byte = self.uart.read(offset as u8);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let [byte] = data {
            if self.uart.write(offset as u8, *byte).is_err() {
                self.output_errors += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn bytes_written_to_thr_reach_the_output() {
        let sink = Sink::default();
        let mut s = SerialConsole::new(EventFd::new(0).unwrap(), Box::new(sink.clone()));
        for b in b"hi\n" {
            s.write(0, &[*b]);
        }
        // Multi-byte accesses are not UART accesses and are ignored.
        s.write(0, b"xy");
        assert_eq!(sink.0.lock().unwrap().as_slice(), b"hi\n");
        // Line status register: transmitter empty.
        let mut lsr = [0u8];
        s.read(5, &mut lsr);
        assert_ne!(lsr[0] & 0x20, 0);
    }
}
