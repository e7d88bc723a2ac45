//! hull-agent: PID 1 of the hull guest.
//!
//! Sets up the guest's base file systems, reaps orphans, tells the VMM it is
//! ready (console line + event port), serves the control channel on vsock
//! when there is a vsock device (docs/agent-protocol.md), and ends the VM by
//! powering it off — PID 1 never simply exits, which would panic the kernel.
//!
//! Kernel parameter `hull.hold`: stay up after ready instead of powering off
//! (the boot benchmark samples a live VMM's memory that way).

mod console;
mod container;
mod control;
mod devices;
mod init;
mod mounts;
mod network;
mod power;
mod pty;
mod reaper;
mod seccomp;
mod switch_root;
mod virtio;
mod vsock;

use std::sync::Arc;

use container::Registry;
use guest_abi::GuestEvent;

fn main() {
    if std::env::args().nth(1).as_deref() == Some(container::sync::INIT_ARG) {
        init::main();
    }
    if !switch_root::done() {
        let e = switch_root::switch();
        // Still on the initramfs: containers fall back to move + chroot.
        console::log(&format!("hull-agent: cannot leave the initramfs: {e}"));
    }
    let registry = Arc::new(Registry::default());
    let port = match power::EventPort::open() {
        Ok(port) => Some(port),
        Err(e) => {
            console::log(&format!(
                "hull-agent: no event port ({e}); power-off falls back to reboot"
            ));
            None
        }
    };
    let control = match run(port.as_ref(), &registry) {
        Ok(control) => control,
        Err(e) => {
            console::log(&format!("hull-agent: fatal: {e}"));
            power::reboot();
        }
    };
    if let Some((listeners, ready)) = control {
        // With a vsock device, the host ends the VM through the control channel.
        if let Err(e) = listeners.serve(ready, registry) {
            console::log(&format!("hull-agent: control channel failed: {e}"));
        }
    } else if kernel_param("hull.hold") {
        loop {
            std::thread::park();
        }
    }
    power::power_off(port.as_ref());
}

/// Early set-up; returns the control listener (and the ready report) when the
/// VM has a vsock device.
fn run(
    port: Option<&power::EventPort>,
    registry: &Arc<Registry>,
) -> Result<Option<(control::Listeners, agent_protocol::Ready)>, Box<dyn std::error::Error>> {
    mounts::mount_base()?;
    // Before ready: no container may see a reserved NIC until it is used.
    network::set_aside_reserved_nics();
    let reaped = registry.clone();
    reaper::start(move |status| reaped.on_exit(status))?;
    if virtio::has_device(virtio::DEVICE_ID_FS) {
        mounts::mount_share()?;
    }
    // Listen before announcing ready, so a host that waits for the ready
    // line can connect at once.
    let listener = if virtio::has_device(virtio::DEVICE_ID_VSOCK) {
        Some(control::Listeners::bind()?)
    } else {
        None
    };
    let ready = console::ready_report();
    console::log(&agent_protocol::ready_line(&ready));
    if let Some(port) = port {
        port.send(GuestEvent::Ready);
    }
    Ok(listener.map(|l| (l, ready)))
}

/// Whether the kernel command line has this bare parameter.
fn kernel_param(name: &str) -> bool {
    std::fs::read_to_string("/proc/cmdline")
        .map(|c| c.split_whitespace().any(|p| p == name))
        .unwrap_or(false)
}
