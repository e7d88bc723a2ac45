//! Interim: the namespace is made, nothing is wired yet (the hostnet
//! branch brings discovery and the tc wiring).
use agent_protocol::network::{MacAddr, NetworkConfig};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
#[derive(Debug, thiserror::Error)]
#[error("stub")]
pub struct NetError;
pub struct HostInterface;
#[derive(Debug)]
pub struct Wiring {
    taps: Vec<WiredTap>,
}
#[derive(Debug)]
pub struct WiredTap {
    pub name: String,
    pub mac: MacAddr,
    pub mtu: u32,
    fd: OwnedFd,
}
impl AsFd for WiredTap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
impl Wiring {
    pub fn taps(&self) -> &[WiredTap] {
        &self.taps
    }
    pub fn network_config(&self) -> NetworkConfig {
        NetworkConfig::default()
    }
    pub fn teardown(self) -> Result<(), NetError> {
        Ok(())
    }
}
pub fn new_netns() -> Result<(), NetError> {
    Err(NetError)
}
pub fn discover() -> Result<Vec<HostInterface>, NetError> {
    Ok(vec![])
}
pub fn wire(_: &[HostInterface]) -> Result<Wiring, NetError> {
    Err(NetError)
}
