//! Joining each host interface to a tap of its own, and undoing it.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};

use agent_protocol::network::{Interface, MacAddr, NetworkConfig, MAX_INTERFACES};

use super::socket::Netlink;
use super::tap::{self, TunKind};
use super::{link, tc, HostInterface, NetError, TAP_PREFIX};

/// One tap [`wire`] made: hull-vmm serves its fd as a virtio-net NIC with
/// [`Self::mac`] (frames on the fd carry a 12-byte `virtio_net_hdr_v1`).
#[derive(Debug)]
pub struct WiredTap {
    name: String,
    host_name: String,
    mac: MacAddr,
    mtu: u32,
    file: File,
}

impl WiredTap {
    pub(super) fn new(name: String, host_name: String, mac: MacAddr, mtu: u32, file: File) -> Self {
        Self {
            name,
            host_name,
            mac,
            mtu,
            file,
        }
    }

    /// The tap's name (`hulltap<N>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host interface it is joined to (the guest NIC's name).
    pub fn host_name(&self) -> &str {
        &self.host_name
    }

    /// The MAC the guest NIC must have: the host interface's.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    pub fn mtu(&self) -> u32 {
        self.mtu
    }
}

impl AsFd for WiredTap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Something [`wire`] made, undone in the reverse order of making.
#[derive(Debug)]
pub(super) enum Made {
    Tap { index: u32, name: String },
    Ingress { index: u32, name: String },
    Redirect { index: u32, name: String },
}

/// The taps, qdiscs and filters of one [`wire`] call. Dropping it tears
/// them down, best effort; [`Wiring::teardown`] reports what failed.
pub struct Wiring {
    /// Opened in the wired namespace, so that teardown acts there from
    /// whatever thread it runs on.
    netlink: Netlink,
    taps: Vec<WiredTap>,
    made: Vec<Made>,
    config: NetworkConfig,
}

impl std::fmt::Debug for Wiring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wiring")
            .field("taps", &self.taps)
            .field("made", &self.made)
            .finish_non_exhaustive()
    }
}

/// Gives every interface a tap `hulltap<N>` (N its position in
/// `interfaces`) with the interface's MTU, up, and redirects frames both
/// ways with an ingress qdisc and a u32 match-all mirred filter on each
/// side. All or nothing: on failure, what this call made is removed.
pub fn wire(interfaces: &[HostInterface]) -> Result<Wiring, NetError> {
    if interfaces.len() > MAX_INTERFACES {
        return Err(NetError::TooManyInterfaces {
            count: interfaces.len(),
            limit: MAX_INTERFACES,
        });
    }
    let config = config_of(interfaces)?;
    let mut wiring = Wiring {
        netlink: Netlink::open()?,
        taps: Vec::new(),
        made: Vec::new(),
        config,
    };
    for (n, host) in interfaces.iter().enumerate() {
        if let Err(e) = wiring.wire_one(n, host) {
            // The first failure is the one to report; undoing is best effort.
            let _ = wiring.teardown();
            return Err(e);
        }
    }
    Ok(wiring)
}

/// What the agent configures, checked before anything is made.
pub(super) fn config_of(interfaces: &[HostInterface]) -> Result<NetworkConfig, NetError> {
    let mut config = NetworkConfig::default();
    for host in interfaces {
        let mac = host.mac.ok_or_else(|| NetError::NotEthernet {
            name: host.name.clone(),
            kind: host.kind.clone().unwrap_or_else(|| "no kind".into()),
        })?;
        config.interfaces.push(Interface {
            name: host.name.clone(),
            mac,
            reserved_mac: None,
            mtu: host.mtu,
            addresses: host.addresses.clone(),
        });
        config.routes.extend(host.routes.iter().cloned());
    }
    // Routes to a gateway need the routes that reach it (a link-scope
    // route to it, as Calico's 169.254.1.1) in place first.
    config.routes.sort_by_key(|r| r.gateway.is_some());
    config.validate()?;
    Ok(config)
}

impl Wiring {
    pub(super) fn from_parts(
        netlink: Netlink,
        taps: Vec<WiredTap>,
        made: Vec<Made>,
        config: NetworkConfig,
    ) -> Self {
        Self {
            netlink,
            taps,
            made,
            config,
        }
    }

    fn wire_one(&mut self, n: usize, host: &HostInterface) -> Result<(), NetError> {
        let name = format!("{TAP_PREFIX}{n}");
        let file = tap::open(&name, TunKind::VnetTap)?;
        let index = link::index_of(&mut self.netlink, &name)?;
        self.made.push(Made::Tap {
            index,
            name: name.clone(),
        });
        link::set_up(&mut self.netlink, index, &name, Some(host.mtu))?;
        for (at, at_name) in [(host.index, &host.name), (index, &name)] {
            tc::add_ingress(&mut self.netlink, at, at_name)?;
            self.made.push(Made::Ingress {
                index: at,
                name: at_name.clone(),
            });
        }
        for (from, from_name, to) in [(host.index, &host.name, index), (index, &name, host.index)] {
            tc::add_redirect(&mut self.netlink, from, from_name, to)?;
            self.made.push(Made::Redirect {
                index: from,
                name: from_name.clone(),
            });
        }
        self.taps.push(WiredTap {
            name,
            host_name: host.name.clone(),
            // config_of refused interfaces without one.
            mac: host.mac.unwrap_or(MacAddr([0; 6])),
            mtu: host.mtu,
            file,
        });
        Ok(())
    }

    /// The taps, in the order of the interfaces given to [`wire`].
    pub fn taps(&self) -> &[WiredTap] {
        &self.taps
    }

    /// The agent's `ConfigureNetwork` payload: one interface per wired host
    /// interface (name, MAC, MTU, addresses) and their routes; it passes
    /// [`NetworkConfig::validate`].
    pub fn network_config(&self) -> NetworkConfig {
        self.config.clone()
    }

    /// Removes the filters, qdiscs and taps, in that order; what is already
    /// gone is no error. Every item is tried; the first failure is returned.
    pub fn teardown(mut self) -> Result<(), NetError> {
        self.undo()
    }

    fn undo(&mut self) -> Result<(), NetError> {
        let mut first_error = None;
        while let Some(item) = self.made.pop() {
            let nl = &mut self.netlink;
            let result = match &item {
                Made::Redirect { index, name } => tc::delete_redirect(nl, *index, name),
                Made::Ingress { index, name } => tc::delete_ingress(nl, *index, name),
                Made::Tap { index, name } => link::delete(nl, *index, name),
            };
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        self.taps.clear();
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Wiring {
    fn drop(&mut self) {
        let _ = self.undo();
    }
}
