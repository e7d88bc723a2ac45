//! hull-agent: PID 1 of the hull guest.
//!
//! Sets up the guest's base file systems, reaps orphans, tells the VMM it is
//! ready (console line + event port), and ends the VM by powering it off —
//! PID 1 never simply exits, which would panic the kernel.
//!
//! Kernel parameter `hull.hold`: stay up after ready instead of powering off
//! (the boot benchmark samples a live VMM's memory that way).

mod console;
mod mounts;
mod power;
mod reaper;
mod virtio;

use agent_protocol::GuestEvent;

fn main() {
    let port = match power::EventPort::open() {
        Ok(port) => Some(port),
        Err(e) => {
            console::log(&format!(
                "hull-agent: no event port ({e}); power-off falls back to reboot"
            ));
            None
        }
    };
    if let Err(e) = run(port.as_ref()) {
        console::log(&format!("hull-agent: fatal: {e}"));
        power::reboot();
    }
    if kernel_param("hull.hold") {
        loop {
            std::thread::park();
        }
    }
    power::power_off(port.as_ref());
}

fn run(port: Option<&power::EventPort>) -> Result<(), Box<dyn std::error::Error>> {
    mounts::mount_base()?;
    reaper::start()?;
    console::log(&agent_protocol::ready_line(&console::ready_report()));
    if let Some(port) = port {
        port.send(GuestEvent::Ready);
    }
    if virtio::has_device(virtio::DEVICE_ID_VSOCK) {
        console::log("hull-agent: vsock device present, but this agent has no vsock service yet");
    }
    Ok(())
}

/// Whether the kernel command line has this bare parameter.
fn kernel_param(name: &str) -> bool {
    std::fs::read_to_string("/proc/cmdline")
        .map(|c| c.split_whitespace().any(|p| p == name))
        .unwrap_or(false)
}
