//! The container's network: the sandbox process enters the namespace the
//! engine gave (or makes one, Docker's way), the spec's create hooks run
//! (Docker's `prestart` hook adds the veth then), and every interface found
//! afterwards is wired to a tap that hull-vmm serves as a virtio-net NIC
//! (`host::net`). The agent then configures each NIC as the host interface
//! is ([`SandboxNetwork::guest_config`]).

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use agent_protocol::network::{is_reserved_mac, NetworkConfig};

use crate::bundle::spec::Spec;
use crate::host::net::{self, NetError, Wiring};
use crate::host::netns::{enter_netns, NetnsError};

use super::vmm::Nic;

/// Where the container's network namespace comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetnsMode<'a> {
    /// A path given by the engine (Podman, containerd/CRI, `ctr --cni`).
    Join(&'a Path),
    /// A namespace entry without a path: hull makes it, as runc does
    /// (Docker adds its veth from a `prestart` hook).
    New,
    /// No namespace list at all: hull's defaults, the VM's own network with
    /// loopback only; nothing on the host is made or wired.
    Default,
}

impl<'a> NetnsMode<'a> {
    /// The mode `spec` asks for. A namespace list without a network
    /// namespace (host networking) was refused when the bundle was loaded.
    pub fn of(spec: &'a Spec) -> Self {
        use oci_spec::runtime::LinuxNamespaceType as Ns;
        let list = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
        match list {
            None => NetnsMode::Default,
            Some(list) if !list.iter().any(|ns| ns.typ() == Ns::Network) => NetnsMode::Default,
            Some(_) => match crate::bundle::spec::network_namespace_path(spec) {
                Some(path) => NetnsMode::Join(path),
                None => NetnsMode::New,
            },
        }
    }

    /// Moves the calling thread into the namespace (threads and processes
    /// it starts afterwards are in it too).
    pub fn enter(self) -> Result<(), NetworkSetupError> {
        match self {
            NetnsMode::Join(path) => enter_netns(path)?,
            NetnsMode::New => net::new_netns()?,
            NetnsMode::Default => {}
        }
        Ok(())
    }
}

/// The network namespace the sandbox started in (the runtime's), to run
/// the create hooks there once the sandbox has entered the container's.
#[derive(Debug)]
pub struct HostNetns(std::fs::File);

impl HostNetns {
    /// The calling thread's network namespace.
    pub fn open() -> Result<Self, NetworkSetupError> {
        std::fs::File::open("/proc/thread-self/ns/net")
            .map(Self)
            .map_err(NetworkSetupError::HostNetns)
    }

    /// Runs `f` on a thread in this namespace (what it starts is there too).
    pub fn run_in<T: Send>(
        &self,
        f: impl FnOnce() -> Result<T, String> + Send,
    ) -> Result<T, String> {
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(&self.0, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                    format!("cannot return to the runtime's network namespace: {e}")
                })?;
                f()
            })
            .join()
            .unwrap_or_else(|_| Err("the hooks' thread panicked".into()))
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetworkSetupError {
    #[error("cannot open the runtime's network namespace: {0}")]
    HostNetns(std::io::Error),
    #[error("cannot enter the container's network namespace: {0}")]
    Netns(#[from] NetnsError),
    #[error("cannot wire the container's network to the VM: {0}")]
    Wire(#[from] NetError),
}

/// What was wired for one sandbox; dropping it removes the taps, qdiscs
/// and filters (from the thread that made them, which is in the namespace).
#[derive(Debug, Default)]
pub struct SandboxNetwork {
    wiring: Option<Wiring>,
}

impl SandboxNetwork {
    /// Wires every interface of the current namespace (none in
    /// [`NetnsMode::Default`]). Call after the create hooks.
    pub fn wire(mode: NetnsMode<'_>) -> Result<Self, NetworkSetupError> {
        if mode == NetnsMode::Default {
            return Ok(Self::default());
        }
        let found = net::discover()?;
        if !found.is_empty() {
            return Ok(Self {
                wiring: Some(net::wire(&found)?),
            });
        }
        // hull's own empty namespace: an interface may still come before
        // `start` (`ctr run --cni`), so the VM gets a reserved NIC.
        if mode == NetnsMode::New {
            return Ok(Self {
                wiring: Some(net::reserve()?),
            });
        }
        Ok(Self::default())
    }

    /// The reserved NIC's tap, if the VM has one (see [`net::reserve`]).
    pub fn reserved_tap(&self) -> Option<String> {
        let tap = self.wiring.as_ref()?.taps().first()?;
        is_reserved_mac(&tap.mac()).then(|| tap.name().to_string())
    }

    /// The NICs hull-vmm gets (tap fds stay owned by the wiring).
    pub fn nics(&self) -> Vec<Nic> {
        self.wiring
            .iter()
            .flat_map(Wiring::taps)
            .map(|tap| Nic {
                fd: tap.as_fd().as_raw_fd(),
                mac: tap.mac(),
                mtu: tap.mtu(),
            })
            .collect()
    }

    /// The host interfaces wired (for the state record and `delete`'s
    /// cleanup of what a killed sandbox left on them).
    pub fn wired_links(&self) -> Vec<String> {
        self.wiring
            .iter()
            .flat_map(Wiring::taps)
            .filter(|tap| !is_reserved_mac(&tap.mac()))
            .map(|tap| tap.host_name().to_string())
            .collect()
    }

    /// What the agent is to configure, whenever hull made or entered a
    /// namespace: with a reserved NIC alone it is empty, and still brings
    /// the guest's loopback up.
    pub fn guest_config(&self) -> Option<NetworkConfig> {
        self.wiring.as_ref().map(Wiring::network_config)
    }

    /// Removes what was wired, reporting a failure (drop does it silently).
    pub fn teardown(&mut self) -> Result<(), NetworkSetupError> {
        match self.wiring.take() {
            Some(w) => Ok(w.teardown()?),
            None => Ok(()),
        }
    }
}
