//! A NIC for an interface that comes after the VM booted. `ctr run --cni`
//! puts its veth into the namespace hull made between `create` and
//! `start`; a VM's NICs are fixed at boot, so when hull made the namespace
//! and found nothing in it after the hooks, the sandbox gives the VM one
//! reserved NIC on a tap of its own, with a placeholder MAC (the agent sets
//! it aside, unseen). `start` joins whatever interface appeared to that tap
//! ([`wire_late`]) and has the agent take the NIC back as that interface.

use agent_protocol::network::{reserved_mac, NetworkConfig};

use super::socket::Netlink;
use super::tap::{self, TunKind};
use super::wire::{config_of, Made, WiredTap, Wiring};
use super::{link, tc, HostInterface, NetError, TAP_PREFIX};

/// The MTU a reserved NIC offers the guest: the most a later interface may
/// have (the agent sets the real one).
pub const RESERVED_MTU_BYTES: u32 = 65500;

/// The tap of the reserved NIC: `hulltap0`, up, no redirect yet.
pub fn reserve() -> Result<Wiring, NetError> {
    let mut netlink = Netlink::open()?;
    let name = format!("{TAP_PREFIX}0");
    let file = tap::open(&name, TunKind::VnetTap)?;
    let index = link::index_of(&mut netlink, &name)?;
    // A failure drops the only fd of the tap, which removes it.
    link::set_up(&mut netlink, index, &name, None)?;
    let made = vec![Made::Tap {
        index,
        name: name.clone(),
    }];
    let tap = WiredTap::new(
        name,
        String::new(),
        reserved_mac(0),
        RESERVED_MTU_BYTES,
        file,
    );
    let wiring = Wiring::from_parts(netlink, vec![tap], made, NetworkConfig::default());
    Ok(wiring)
}

/// Joins `host` to the reserved tap `tap` (in the calling thread's
/// namespace) and returns what the agent is to configure: `host` as the
/// reserved NIC. Nothing is left made on failure.
pub fn wire_late(tap: &str, host: &HostInterface) -> Result<NetworkConfig, NetError> {
    let mut config = config_of(std::slice::from_ref(host))?;
    if let Some(interface) = config.interfaces.first_mut() {
        interface.reserved_mac = Some(reserved_mac(0));
    }
    config.validate()?;
    let mut nl = Netlink::open()?;
    let index = link::index_of(&mut nl, tap)?;
    link::set_up(&mut nl, index, tap, Some(host.mtu))?;
    // Only what this call made is undone on failure.
    let mut made: Vec<(u32, &str)> = Vec::new();
    let mut joined = Ok(());
    for (at, at_name) in [(host.index, host.name.as_str()), (index, tap)] {
        joined = tc::add_ingress(&mut nl, at, at_name);
        if joined.is_err() {
            break;
        }
        made.push((at, at_name));
    }
    if joined.is_ok() {
        joined = tc::add_redirect(&mut nl, host.index, &host.name, index)
            .and_then(|()| tc::add_redirect(&mut nl, index, tap, host.index));
    }
    if let Err(e) = joined {
        for (at, at_name) in made {
            let _ = tc::delete_ingress(&mut nl, at, at_name);
        }
        return Err(e);
    }
    Ok(config)
}
