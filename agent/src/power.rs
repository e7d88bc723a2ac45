//! Ending the VM. There is no ACPI, so the agent writes `PowerOff` to hull's
//! event port and the VMM tears the VM down at once. If the port cannot be
//! used, the fallback is a reboot, which the VMM sees as a reset.

use std::io;

use guest_abi::{GuestEvent, EVENT_PORT};

/// Permission to write the event port (granted by ioperm to this process).
pub struct EventPort(());

impl EventPort {
    pub fn open() -> io::Result<Self> {
        // SAFETY: ioperm (which nix does not wrap) only changes this
        // process's I/O permission bitmap.
        let rc = unsafe { libc::ioperm(libc::c_ulong::from(EVENT_PORT), 1, 1) };
        if rc == 0 {
            Ok(Self(()))
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub fn send(&self, event: GuestEvent) {
        // SAFETY: `open` granted this process access to EVENT_PORT (the only
        // way to get an EventPort), so the `out` cannot fault; it touches no
        // memory.
        unsafe {
            std::arch::asm!("out dx, al", in("dx") EVENT_PORT, in("al") event.to_byte(),
                options(nomem, nostack, preserves_flags));
        }
    }
}

/// Reboots the guest: the VMM sees an i8042 reset (an abnormal end).
pub fn reboot() -> ! {
    // tcdrain makes sure the last console lines (the reason) are out first.
    nix::unistd::sync();
    let _ = nix::sys::termios::tcdrain(std::io::stdout());
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT);
    // reboot() only returns on failure; there is nothing left to do but wait.
    loop {
        std::thread::park();
    }
}

/// Syncs file systems, drains the console, and powers the VM off; never returns.
pub fn power_off(port: Option<&EventPort>) -> ! {
    // tcdrain waits until the tty has sent every byte of console output to
    // the UART, which the VMM would otherwise lose when it stops the VM at
    // the port write.
    nix::unistd::sync();
    let _ = nix::sys::termios::tcdrain(std::io::stdout());
    if let Some(port) = port {
        port.send(GuestEvent::PowerOff);
    }
    reboot()
}
