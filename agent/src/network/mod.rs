//! The guest's network: `Request::ConfigureNetwork` applied to the links.
//!
//! The VMM gives the guest one virtio-net NIC per [`Interface`], with the
//! host interface's MAC, so each NIC is found by its MAC (waiting a short
//! while: virtio-net may still be probing). Then, per interface: down,
//! renamed, MTU, addresses, up; then the routes, on-link ones first so that
//! the gateways they reach are routable. Loopback is brought up first.
//!
//! An interface that came after the VM booted names a reserved NIC
//! ([`reserved`]), set aside at boot: it is bound back to virtio_net, found
//! by its placeholder MAC and given the interface's MAC before the steps above.

mod address;
mod link;
mod message;
mod netlink;
mod reserved;
#[cfg(test)]
mod tests;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use agent_protocol::network::{Interface, MacAddr, NetworkConfig};
use agent_protocol::wire::{ErrorCode, Response};
use nix::errno::Errno;

use self::link::Link;
use self::netlink::{LinkMonitor, Netlink, NetlinkError};
use self::reserved::{Registry, ReservedError, Sysfs};

pub use self::reserved::set_aside_reserved_nics;

/// How long the NICs may take to appear after the agent started.
pub const NIC_WAIT_MS: u64 = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigureError {
    #[error("open: {0}")]
    Open(#[source] NetlinkError),
    #[error("list links: {0}")]
    List(#[source] NetlinkError),
    #[error("lo: set up: {0}")]
    Loopback(#[source] NetlinkError),
    #[error("{name}: no NIC has MAC {mac} (waited {waited_ms} ms)")]
    NoNic {
        name: String,
        mac: String,
        waited_ms: u128,
    },
    #[error("{name}: {step}: {source}")]
    Interface {
        name: String,
        step: String,
        source: NetlinkError,
    },
    #[error("route {route}: {source}")]
    Route { route: String, source: NetlinkError },
    #[error(transparent)]
    Reserved(#[from] ReservedError),
}

impl ConfigureError {
    /// A refusal of the configuration's values is the host's bad request;
    /// anything else is the guest's failure.
    fn code(&self) -> ErrorCode {
        let source = match self {
            ConfigureError::Interface { source, .. } | ConfigureError::Route { source, .. } => {
                source
            }
            // The host named a reserved NIC the guest lacks, or one not free for it.
            ConfigureError::Reserved(
                ReservedError::Unknown { .. }
                | ReservedError::Taken { .. }
                | ReservedError::Twice { .. },
            ) => return ErrorCode::BadRequest,
            _ => return ErrorCode::Internal,
        };
        match source.errno() {
            Some(
                Errno::EINVAL
                | Errno::ERANGE
                | Errno::EEXIST
                | Errno::ENETUNREACH
                | Errno::EADDRNOTAVAIL,
            ) => ErrorCode::BadRequest,
            _ => ErrorCode::Internal,
        }
    }
}

/// Applies `config` (validated first; a bad one changes nothing).
pub fn configure(config: &NetworkConfig) -> Response {
    configure_with(config, &Sysfs::default(), &reserved::REGISTRY)
}

/// [`configure`], with the reserved NICs of `registry`, bound through `sysfs`.
fn configure_with(config: &NetworkConfig, sysfs: &Sysfs, registry: &Mutex<Registry>) -> Response {
    if let Err(e) = config.validate() {
        return Response::error(ErrorCode::BadRequest, format!("network configuration: {e}"));
    }
    let nic_wait = Duration::from_millis(NIC_WAIT_MS);
    match apply(config, nic_wait, sysfs, registry) {
        Ok(()) => Response::Ok,
        Err(e) => Response::error(e.code(), format!("network configuration: {e}")),
    }
}

/// Applies a validated `config`, waiting up to `nic_wait` for its NICs.
fn apply(
    config: &NetworkConfig,
    nic_wait: Duration,
    sysfs: &Sysfs,
    registry: &Mutex<Registry>,
) -> Result<(), ConfigureError> {
    let mut netlink = Netlink::open().map_err(ConfigureError::Open)?;
    take_reserved(&mut netlink, &config.interfaces, nic_wait, sysfs, registry)?;
    let wanted: Vec<Wanted> = config.interfaces.iter().map(Wanted::nic).collect();
    let (links, nics) = find_links(&mut netlink, &wanted, nic_wait)?;
    if let Some(lo) = links.iter().find(|l| l.loopback) {
        link::set_up(&mut netlink, lo.index, true).map_err(ConfigureError::Loopback)?;
    }
    let step = |interface: &Interface, step: String| {
        let name = interface.name.clone();
        move |source| ConfigureError::Interface { name, step, source }
    };
    for (interface, nic) in config.interfaces.iter().zip(&nics) {
        link::set_up(&mut netlink, nic.index, false).map_err(step(interface, "set down".into()))?;
    }
    rename_all(&mut netlink, &config.interfaces, &nics)?;
    for (interface, nic) in config.interfaces.iter().zip(&nics) {
        link::set_mtu(&mut netlink, nic.index, interface.mtu)
            .map_err(step(interface, format!("set mtu {}", interface.mtu)))?;
        for cidr in &interface.addresses {
            address::add_address(&mut netlink, nic.index, cidr)
                .map_err(step(interface, format!("add address {cidr}")))?;
        }
        link::set_up(&mut netlink, nic.index, true).map_err(step(interface, "set up".into()))?;
    }
    // On-link routes first: a gateway must be reachable when its route is added.
    let (onlink, via): (Vec<_>, Vec<_>) = config.routes.iter().partition(|r| r.gateway.is_none());
    for route in onlink.into_iter().chain(via) {
        let index = config
            .interfaces
            .iter()
            .zip(&nics)
            .find(|(i, _)| i.name == route.device)
            .map(|(_, nic)| nic.index);
        // validate() checked that the device is one of the interfaces.
        let Some(index) = index else { continue };
        address::add_route(&mut netlink, index, route).map_err(|source| ConfigureError::Route {
            route: address::describe(route),
            source,
        })?;
    }
    Ok(())
}

/// Binds back the reserved NICs the interfaces name (all checked against
/// `registry` first, so an unknown one changes nothing), waits for their
/// links and gives each its interface's MAC, by which it is found next.
fn take_reserved(
    netlink: &mut Netlink,
    interfaces: &[Interface],
    wait: Duration,
    sysfs: &Sysfs,
    registry: &Mutex<Registry>,
) -> Result<(), ConfigureError> {
    let mut registry = reserved::lock(registry);
    let takes = registry.plan(interfaces)?;
    if takes.is_empty() {
        return Ok(());
    }
    let reserved: Vec<&Interface> = interfaces
        .iter()
        .filter(|i| i.reserved_mac.is_some())
        .collect();
    for (interface, take) in reserved.iter().zip(&takes) {
        if take.bind {
            sysfs.bind(&take.device)?;
            registry.bound(take.placeholder, interface.mac);
        }
    }
    // Either MAC: a NIC bound by an earlier, interrupted attempt may have its own.
    let wanted: Vec<Wanted> = reserved
        .iter()
        .zip(&takes)
        .map(|(i, take)| Wanted {
            name: &i.name,
            mac: take.placeholder,
            or: Some(i.mac),
        })
        .collect();
    let (_, nics) = find_links(netlink, &wanted, wait)?;
    for ((interface, take), nic) in reserved.iter().zip(&takes).zip(&nics) {
        if nic.mac != Some(take.placeholder.0) {
            continue;
        }
        let step = |step: String| {
            let name = interface.name.clone();
            move |source| ConfigureError::Interface { name, step, source }
        };
        link::set_up(netlink, nic.index, false).map_err(step("set down".into()))?;
        link::set_mac(netlink, nic.index, &interface.mac).map_err(step(format!(
            "set MAC {} (was {})",
            interface.mac, take.placeholder
        )))?;
    }
    Ok(())
}

/// A link waited for: the interface it is for, found by `mac` (or `or`).
struct Wanted<'a> {
    name: &'a str,
    mac: MacAddr,
    or: Option<MacAddr>,
}

impl<'a> Wanted<'a> {
    fn nic(interface: &'a Interface) -> Self {
        Wanted {
            name: &interface.name,
            mac: interface.mac,
            or: None,
        }
    }

    fn matches(&self, link: &Link) -> bool {
        link.mac == Some(self.mac.0) || self.or.is_some_and(|m| link.mac == Some(m.0))
    }

    fn macs(&self) -> String {
        match self.or {
            Some(or) => format!("{} or {or}", self.mac),
            None => self.mac.to_string(),
        }
    }
}

/// Lists the links until each wanted one is among them, or `wait` is over;
/// returns all links and, in the order of `wanted`, the ones found.
fn find_links(
    netlink: &mut Netlink,
    wanted: &[Wanted],
    wait: Duration,
) -> Result<(Vec<Link>, Vec<Link>), ConfigureError> {
    let start = Instant::now();
    let mut monitor: Option<LinkMonitor> = None;
    loop {
        let links = link::list(netlink).map_err(ConfigureError::List)?;
        let find = |w: &Wanted| links.iter().find(|l| w.matches(l)).cloned();
        let Some(missing) = wanted.iter().find(|w| find(w).is_none()) else {
            let found = wanted.iter().filter_map(find).collect();
            return Ok((links, found));
        };
        let waited = start.elapsed();
        if waited >= wait {
            return Err(ConfigureError::NoNic {
                name: missing.name.to_string(),
                mac: missing.macs(),
                waited_ms: waited.as_millis(),
            });
        }
        match &mut monitor {
            // Subscribed before the next listing, so no arrival goes unseen.
            None => monitor = Some(LinkMonitor::open().map_err(ConfigureError::List)?),
            Some(monitor) => monitor.wait(wait - waited).map_err(ConfigureError::List)?,
        }
    }
}

/// Gives each NIC its interface's name. A name still held by another NIC
/// (NICs swapping names) is freed first by moving this NIC to a temporary
/// name; a name held by a link outside the configuration fails the rename.
fn rename_all(
    netlink: &mut Netlink,
    interfaces: &[Interface],
    nics: &[Link],
) -> Result<(), ConfigureError> {
    let mut current: Vec<String> = nics.iter().map(|n| n.name.clone()).collect();
    // Held by another of the NICs: that one is renamed too, so moving aside works.
    let held_by_a_nic =
        |name: &str, index: u32| nics.iter().any(|l| l.name == name && l.index != index);
    for ((interface, nic), name) in interfaces.iter().zip(nics).zip(&mut current) {
        if *name != interface.name && held_by_a_nic(&interface.name, nic.index) {
            let temporary = format!("hull{}", nic.index);
            link::rename(netlink, nic.index, &temporary).map_err(|source| {
                ConfigureError::Interface {
                    name: interface.name.clone(),
                    step: format!("rename from {name} to {temporary}"),
                    source,
                }
            })?;
            *name = temporary;
        }
    }
    for ((interface, nic), name) in interfaces.iter().zip(nics).zip(&current) {
        if *name != interface.name {
            link::rename(netlink, nic.index, &interface.name).map_err(|source| {
                ConfigureError::Interface {
                    name: interface.name.clone(),
                    step: format!("rename from {name}"),
                    source,
                }
            })?;
        }
    }
    Ok(())
}
