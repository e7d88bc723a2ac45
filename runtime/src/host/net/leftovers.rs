//! What a killed sandbox leaves in a namespace it did not make: its taps
//! die with its file descriptors, but the ingress qdiscs (and their
//! redirect filters) it put on the engine's interfaces stay. `delete`
//! removes them, from a thread that enters the namespace for the purpose.

use std::path::Path;

use super::socket::Netlink;
use super::{link, tc, NetError, TAP_PREFIX};
use crate::host::netns::enter_netns;

/// Removes the ingress qdisc of each of `links` (gone links and qdiscs are
/// no error) and any `hulltap*` link left in the namespace at `netns`.
pub fn remove_leftovers(netns: &Path, links: &[String]) -> Result<(), NetError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter_netns(netns).map_err(|e| NetError::Enter(e.to_string()))?;
            let mut nl = Netlink::open()?;
            for name in links {
                match link::index_of(&mut nl, name) {
                    Ok(index) => tc::delete_ingress(&mut nl, index, name)?,
                    Err(NetError::NoSuchLink(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            for found in link::dump(&mut nl)? {
                let name = found.attributes.iter().find_map(|a| match a {
                    netlink_packet_route::link::LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                });
                if let Some(name) = name.filter(|n| n.starts_with(TAP_PREFIX)) {
                    link::delete(&mut nl, found.header.index, &name)?;
                }
            }
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(NetError::Enter("the cleanup thread panicked".into())))
    })
}
