//! The guest's network: `Request::ConfigureNetwork` applied to the links.
//!
//! The VMM gives the guest one virtio-net NIC per [`Interface`], with the
//! host interface's MAC, so each NIC is found by its MAC (waiting a short
//! while: virtio-net may still be probing). Then, per interface: down,
//! renamed, MTU, addresses, up; then the routes, on-link ones first so that
//! the gateways they reach are routable. Loopback is brought up first.

mod address;
mod link;
mod message;
mod netlink;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use agent_protocol::network::{Interface, NetworkConfig};
use agent_protocol::wire::{ErrorCode, Response};
use nix::errno::Errno;

use self::link::Link;
use self::netlink::{LinkMonitor, Netlink, NetlinkError};

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
}

impl ConfigureError {
    /// A refusal of the configuration's values is the host's bad request;
    /// anything else is the guest's failure.
    fn code(&self) -> ErrorCode {
        let source = match self {
            ConfigureError::Interface { source, .. } | ConfigureError::Route { source, .. } => {
                source
            }
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
    if let Err(e) = config.validate() {
        return Response::error(ErrorCode::BadRequest, format!("network configuration: {e}"));
    }
    match apply(config, Duration::from_millis(NIC_WAIT_MS)) {
        Ok(()) => Response::Ok,
        Err(e) => Response::error(e.code(), format!("network configuration: {e}")),
    }
}

/// Applies a validated `config`, waiting up to `nic_wait` for its NICs.
fn apply(config: &NetworkConfig, nic_wait: Duration) -> Result<(), ConfigureError> {
    let mut netlink = Netlink::open().map_err(ConfigureError::Open)?;
    let (links, nics) = find_nics(&mut netlink, &config.interfaces, nic_wait)?;
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

/// Lists the links until every interface's MAC is among them, or `wait` is
/// over; returns all links and, in the interfaces' order, their NICs.
fn find_nics(
    netlink: &mut Netlink,
    interfaces: &[Interface],
    wait: Duration,
) -> Result<(Vec<Link>, Vec<Link>), ConfigureError> {
    let start = Instant::now();
    let mut monitor: Option<LinkMonitor> = None;
    loop {
        let links = link::list(netlink).map_err(ConfigureError::List)?;
        let nic = |i: &Interface| links.iter().find(|l| l.mac == Some(i.mac.0)).cloned();
        let Some(missing) = interfaces.iter().find(|i| nic(i).is_none()) else {
            let nics = interfaces.iter().filter_map(nic).collect();
            return Ok((links, nics));
        };
        let waited = start.elapsed();
        if waited >= wait {
            return Err(ConfigureError::NoNic {
                name: missing.name.clone(),
                mac: missing.mac.to_string(),
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
