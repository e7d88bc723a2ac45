//! The container's network, carried into the VM the way Kata Containers and
//! firecracker-containerd do it ("tc-filter" model): the engine (CNI,
//! netavark, Docker) put a veth into the network namespace; the sandbox,
//! running inside that namespace, gives every such interface a tap
//! (`hulltap<N>`, served by hull-vmm as a virtio-net NIC) and joins the two
//! with an ingress qdisc on each and a u32 match-all filter whose mirred
//! action redirects every frame to the other's egress. The veth keeps its
//! MAC and addresses; the guest NIC gets the veth's MAC and the agent gives
//! it the veth's name, addresses and routes ([`Wiring::network_config`]).
//!
//! Everything is done through rtnetlink (netlink-packet-route's messages on
//! a synchronous netlink socket), in the network namespace of the calling
//! thread: [`new_netns`] or [`super::netns::enter_netns`] first.
//!
//! - [`discover`]: the namespace's interfaces, addresses and routes.
//! - [`wire`]: taps, qdiscs and filters for them, all or nothing.
//! - [`Wiring::teardown`]: removes what [`wire`] made.
//! - [`remove_leftovers`]: what a killed sandbox left (for `delete`).
//! - [`reserve`], [`wire_late`]: a NIC for an interface that comes between
//!   `create` and `start` (`ctr run --cni`).

mod discover;
mod leftovers;
mod link;
mod reserve;
mod socket;
mod tap;
mod tc;
mod wire;

#[cfg(test)]
mod tests;

use std::io;

use agent_protocol::network::{IpCidr, MacAddr, NetworkError, Route};

pub use discover::discover;
pub use leftovers::remove_leftovers;
pub use reserve::{reserve, wire_late, RESERVED_MTU_BYTES};
pub use wire::{wire, WiredTap, Wiring};

/// Prefix of the taps hull makes; [`discover`] leaves such links out.
pub const TAP_PREFIX: &str = "hulltap";

/// One link of the namespace, as [`discover`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInterface {
    pub name: String,
    pub index: u32,
    /// The rtnetlink kind (`veth`, `macvlan`, `ipip`…); `None` for a link
    /// without one (a physical NIC).
    pub kind: Option<String>,
    /// The Ethernet address; `None` for a link that is not Ethernet (an L3
    /// tun, an ipip tunnel…), which [`wire`] refuses.
    pub mac: Option<MacAddr>,
    pub mtu: u32,
    /// Global-scope IPv4 and IPv6 addresses (no link-local ones).
    pub addresses: Vec<IpCidr>,
    /// Main-table routes via this link that the kernel did not add itself
    /// (the default route, static ones); `device` is [`Self::name`].
    pub routes: Vec<Route>,
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot create a network namespace: {0}")]
    Unshare(io::Error),
    #[error("netlink socket: {what}: {source}")]
    Socket {
        what: &'static str,
        source: io::Error,
    },
    #[error("{what}: {source}")]
    Kernel { what: String, source: io::Error },
    #[error("{what}: undecodable netlink reply: {reason}")]
    Decode { what: String, reason: String },
    #[error("no link named {0} in this network namespace")]
    NoSuchLink(String),
    #[error("interface {name} ({kind}) has no Ethernet address: an L3 link cannot back a NIC")]
    NotEthernet { name: String, kind: String },
    #[error("{count} interfaces exceed the limit of {limit}")]
    TooManyInterfaces { count: usize, limit: usize },
    #[error("the network found is not one the guest can take: {0}")]
    Invalid(#[from] NetworkError),
    #[error("{0}")]
    Enter(String),
    #[error("tap {name}: {what}: {source}")]
    Tap {
        name: String,
        what: &'static str,
        source: io::Error,
    },
}

impl NetError {
    /// The errno of a kernel refusal, to tell "already gone" apart.
    fn errno(&self) -> Option<i32> {
        match self {
            NetError::Kernel { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Gives the calling thread a new, empty network namespace with its
/// loopback up (Docker's way: the runtime makes the namespace). Threads the
/// caller starts afterwards inherit it.
pub fn new_netns() -> Result<(), NetError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|errno| NetError::Unshare(errno.into()))?;
    loopback_up()
}

/// Sets `lo` up in the calling thread's network namespace.
pub fn loopback_up() -> Result<(), NetError> {
    let mut nl = socket::Netlink::open()?;
    let index = link::index_of(&mut nl, "lo")?;
    link::set_up(&mut nl, index, "lo", None)
}
