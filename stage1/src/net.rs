//! The pod's network. `--net=none`: loopback only (hull makes the network
//! namespace). `--net` absent or `default`: a CNI bridge with NAT in a
//! named network namespace `/run/netns/hull-rkt-<uuid>` (hull's runtime
//! library runs the plugins as libcni does). `--net=host` cannot be: a VM
//! has its own network stack. Named networks of rkt's configuration are
//! refused by name.

use std::path::{Path, PathBuf};

use runtime::host::cni::{self, netns, Attachment, CniError};
use serde_json::{json, Value};

/// The network: name, bridge, subnet (rkt's own default network's subnet).
pub const NETWORK: (&str, &str, &str) = ("hull-rkt", "hullrkt0", "172.16.28.0/24");

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("--net=host is not possible with hull's stage1: each pod is a VM with its own network stack")]
    Host,
    #[error("--net={0}: hull's stage1 knows the networks default and none only")]
    Unknown(String),
    #[error(transparent)]
    Cni(#[from] CniError),
}

/// What `--net` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetMode {
    Default,
    None,
}

impl NetMode {
    /// `--net`'s value as stage0 writes it (`common.NetList.String()`:
    /// comma-separated names, `default` when none was given).
    pub fn parse(value: Option<&str>) -> Result<Self, NetError> {
        let v = value.unwrap_or("default");
        let names: Vec<&str> = v
            .split(',')
            .map(|n| n.split(':').next().unwrap_or(n))
            .collect();
        match names.as_slice() {
            [""] | ["default"] | ["true"] => Ok(Self::Default),
            ["none"] => Ok(Self::None),
            ["host"] => Err(NetError::Host),
            _ if names.contains(&"host") => Err(NetError::Host),
            _ => Err(NetError::Unknown(v.into())),
        }
    }
}

pub fn netns_path(uuid: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(format!("hull-rkt-{uuid}"))
}

fn attachment(uuid: &str, ns: &Path) -> Attachment {
    let (name, bridge, subnet) = NETWORK;
    Attachment {
        container_id: format!("rkt-{uuid}"),
        netns: ns.into(),
        ifname: "eth0".into(),
        network: cni::default_network(name, bridge, subnet),
        runtime_config: json!({"portMappings": []}),
        plugin_dir: cni::plugin_dir(),
    }
}

/// Makes the namespace and runs CNI `ADD`; undone on error.
pub fn attach(uuid: &str) -> Result<(PathBuf, Value), NetError> {
    let ns = netns_path(uuid);
    // What a SIGKILLed run of the same pod left (gc not run yet).
    let _ = netns::remove(&ns);
    netns::create(&ns)?;
    match attachment(uuid, &ns).add() {
        Ok(result) => Ok((ns, result)),
        Err(e) => {
            let _ = netns::remove(&ns);
            Err(e.into())
        }
    }
}

/// Runs CNI `DEL` (when the namespace is there) and removes the
/// namespace; nothing there is fine.
pub fn detach(uuid: &str, result: Option<&Value>) -> Result<(), NetError> {
    let ns = netns_path(uuid);
    let deleted = if ns.exists() {
        attachment(uuid, &ns).del(result)
    } else {
        Ok(())
    };
    netns::remove(&ns)?;
    deleted.map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_modes() {
        assert_eq!(NetMode::parse(None).unwrap(), NetMode::Default);
        assert_eq!(NetMode::parse(Some("default")).unwrap(), NetMode::Default);
        assert_eq!(NetMode::parse(Some("none")).unwrap(), NetMode::None);
        assert!(matches!(NetMode::parse(Some("host")), Err(NetError::Host)));
        assert!(matches!(
            NetMode::parse(Some("default,host")),
            Err(NetError::Host)
        ));
        assert!(matches!(
            NetMode::parse(Some("mynet")),
            Err(NetError::Unknown(_))
        ));
        assert_eq!(netns_path("u"), PathBuf::from("/run/netns/hull-rkt-u"));
    }
}
