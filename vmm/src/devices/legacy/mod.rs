//! Legacy x86 port-I/O devices: the 8250 serial console, the i8042 reset line
//! and hull's guest event port.

pub mod event_port;
pub mod i8042;
pub mod serial;

/// I/O port ranges (base, length).
pub const SERIAL_PORT: (u64, u64) = (0x3f8, 8);
pub const I8042_PORT: (u64, u64) = (0x60, 5);
/// The ISA IRQ (and GSI) of the first serial port.
pub const SERIAL_IRQ: u32 = 4;
