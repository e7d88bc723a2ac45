//! The guest's network, as the host found it in the container's network
//! namespace: one [`Interface`] per NIC the VMM gives the guest (found by
//! its MAC, which the VMM sets to the host interface's), and the routes of
//! the namespace. Carried by `Request::ConfigureNetwork`; the agent
//! validates it ([`NetworkConfig::validate`]) before it touches a link.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Most NICs one guest gets.
pub const MAX_INTERFACES: usize = 16;
/// Most addresses on one interface.
pub const MAX_ADDRESSES: usize = 64;
/// Most routes in one configuration.
pub const MAX_ROUTES: usize = 256;
/// Smallest and largest MTU accepted (IPv4's minimum; a 64 KiB frame).
pub const MIN_MTU_BYTES: u32 = 68;
pub const MAX_MTU_BYTES: u32 = 65535;
/// Longest interface name (IFNAMSIZ without its NUL).
pub const MAX_IFNAME_BYTES: usize = 15;

/// Everything the agent sets up: the interfaces, then the routes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConfig {
    pub interfaces: Vec<Interface>,
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// One NIC, described as the host interface it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// The name it gets in the guest (the host interface's, e.g. `eth0`).
    pub name: String,
    /// The MAC the guest NIC has (the VMM sets it); identifies the NIC.
    pub mac: MacAddr,
    /// Set when the interface came after the VM booted (`ctr run --cni`
    /// wires the namespace between `create` and `start`): the guest NIC is
    /// a reserved one, with this placeholder MAC ([`is_reserved_mac`]), that
    /// the agent set aside at boot; it takes it back and gives it `mac`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_mac: Option<MacAddr>,
    pub mtu: u32,
    #[serde(default)]
    pub addresses: Vec<IpCidr>,
}

/// A route of the namespace's main table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// `None` is the default route of the gateway's family.
    #[serde(default)]
    pub destination: Option<IpCidr>,
    #[serde(default)]
    pub gateway: Option<IpAddr>,
    /// The interface's name (one of [`NetworkConfig::interfaces`]).
    pub device: String,
    #[serde(default)]
    pub metric: Option<u32>,
    /// Preferred source address, if the host route has one.
    #[serde(default)]
    pub source: Option<IpAddr>,
}

/// An address with its prefix length (`10.88.0.2/16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpCidr {
    pub address: IpAddr,
    pub prefix_len: u8,
}

impl IpCidr {
    fn max_prefix(&self) -> u8 {
        match self.address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        }
    }
}

impl std::fmt::Display for IpCidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MacAddr(pub [u8; 6]);

/// First five bytes of a reserved NIC's placeholder MAC (locally
/// administered, unicast: `0e:68:75:6c:6c:NN`, "hull"); NN is its number.
pub const RESERVED_MAC_PREFIX: [u8; 5] = [0x0e, 0x68, 0x75, 0x6c, 0x6c];

/// The placeholder MAC of reserved NIC `n`.
pub fn reserved_mac(n: u8) -> MacAddr {
    let [a, b, c, d, e] = RESERVED_MAC_PREFIX;
    MacAddr([a, b, c, d, e, n])
}

/// Whether `mac` is a reserved NIC's placeholder.
pub fn is_reserved_mac(mac: &MacAddr) -> bool {
    mac.0[..5] == RESERVED_MAC_PREFIX
}

impl std::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl std::str::FromStr for MacAddr {
    type Err = NetworkError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || NetworkError::BadMac(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NetworkError {
    #[error("malformed MAC address {0:?} (want aa:bb:cc:dd:ee:ff)")]
    BadMac(String),
    #[error("{count} {what} exceed the limit of {limit}")]
    TooMany {
        what: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("invalid interface name {0:?}")]
    BadName(String),
    #[error("interface {name}: MTU {mtu} is outside {MIN_MTU_BYTES}..={MAX_MTU_BYTES}")]
    BadMtu { name: String, mtu: u32 },
    #[error("interface {name}: MAC {mac} is not a unicast address")]
    NotUnicast { name: String, mac: MacAddr },
    #[error("interface {name}: {mac} is not a reserved NIC's MAC")]
    NotReserved { name: String, mac: MacAddr },
    #[error("two interfaces share the {what} {value}")]
    Duplicate { what: &'static str, value: String },
    #[error("address {0} has a prefix longer than its family allows")]
    BadPrefix(String),
    #[error("route via {device}: no such interface in the configuration")]
    UnknownDevice { device: String },
    #[error("route to {destination}: gateway {gateway} is of another address family")]
    MixedFamilies {
        destination: String,
        gateway: IpAddr,
    },
}

/// A name the kernel accepts for a link: 1..=15 bytes, no `/`, `:`, NUL or
/// whitespace, not `.` or `..`.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_IFNAME_BYTES
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
}

fn check_count(what: &'static str, count: usize, limit: usize) -> Result<(), NetworkError> {
    if count > limit {
        return Err(NetworkError::TooMany { what, count, limit });
    }
    Ok(())
}

fn check_cidr(cidr: &IpCidr) -> Result<(), NetworkError> {
    if cidr.prefix_len > cidr.max_prefix() {
        return Err(NetworkError::BadPrefix(cidr.to_string()));
    }
    Ok(())
}

impl Interface {
    fn validate(&self) -> Result<(), NetworkError> {
        if !valid_ifname(&self.name) || self.name == "lo" {
            return Err(NetworkError::BadName(self.name.clone()));
        }
        if !(MIN_MTU_BYTES..=MAX_MTU_BYTES).contains(&self.mtu) {
            return Err(NetworkError::BadMtu {
                name: self.name.clone(),
                mtu: self.mtu,
            });
        }
        // Multicast bit set, or all zeroes: not a NIC's own address.
        if self.mac.0[0] & 1 == 1 || self.mac.0 == [0; 6] {
            return Err(NetworkError::NotUnicast {
                name: self.name.clone(),
                mac: self.mac,
            });
        }
        if let Some(reserved) = self.reserved_mac.filter(|m| !is_reserved_mac(m)) {
            return Err(NetworkError::NotReserved {
                name: self.name.clone(),
                mac: reserved,
            });
        }
        check_count("addresses", self.addresses.len(), MAX_ADDRESSES)?;
        self.addresses.iter().try_for_each(check_cidr)
    }
}

impl Route {
    fn validate(&self, interfaces: &[Interface]) -> Result<(), NetworkError> {
        if !interfaces.iter().any(|i| i.name == self.device) {
            return Err(NetworkError::UnknownDevice {
                device: self.device.clone(),
            });
        }
        if let Some(destination) = &self.destination {
            check_cidr(destination)?;
            if let Some(gateway) = self.gateway {
                if gateway.is_ipv4() != destination.address.is_ipv4() {
                    return Err(NetworkError::MixedFamilies {
                        destination: destination.to_string(),
                        gateway,
                    });
                }
            }
        }
        Ok(())
    }
}

impl NetworkConfig {
    /// Checks every bound and cross-reference; the agent calls it before it
    /// changes anything, so a bad configuration changes nothing.
    pub fn validate(&self) -> Result<(), NetworkError> {
        check_count("interfaces", self.interfaces.len(), MAX_INTERFACES)?;
        check_count("routes", self.routes.len(), MAX_ROUTES)?;
        for (n, interface) in self.interfaces.iter().enumerate() {
            interface.validate()?;
            for other in &self.interfaces[..n] {
                if other.name == interface.name {
                    return Err(NetworkError::Duplicate {
                        what: "name",
                        value: interface.name.clone(),
                    });
                }
                if other.reserved_mac.is_some() && other.reserved_mac == interface.reserved_mac {
                    return Err(NetworkError::Duplicate {
                        what: "reserved NIC",
                        value: interface.mac.to_string(),
                    });
                }
                if other.mac == interface.mac {
                    return Err(NetworkError::Duplicate {
                        what: "MAC",
                        value: interface.mac.to_string(),
                    });
                }
            }
        }
        self.routes
            .iter()
            .try_for_each(|r| r.validate(&self.interfaces))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth0() -> Interface {
        Interface {
            name: "eth0".into(),
            mac: "02:42:ac:11:00:02".parse().unwrap(),
            reserved_mac: None,
            mtu: 1500,
            addresses: vec![IpCidr {
                address: "172.17.0.2".parse().unwrap(),
                prefix_len: 16,
            }],
        }
    }

    fn config() -> NetworkConfig {
        NetworkConfig {
            interfaces: vec![eth0()],
            routes: vec![Route {
                destination: None,
                gateway: Some("172.17.0.1".parse().unwrap()),
                device: "eth0".into(),
                metric: None,
                source: None,
            }],
        }
    }

    #[test]
    fn macs_parse_and_print_alike() {
        let mac: MacAddr = "02:42:AC:11:00:02".parse().unwrap();
        assert_eq!(mac.0, [0x02, 0x42, 0xac, 0x11, 0, 2]);
        assert_eq!(mac.to_string(), "02:42:ac:11:00:02");
        for bad in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:02:03",
            "2:42:ac:11:00:02",
            "zz:42:ac:11:00:02",
        ] {
            assert_eq!(
                bad.parse::<MacAddr>(),
                Err(NetworkError::BadMac(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_docker_like_config_is_valid_and_round_trips() {
        let c = config();
        c.validate().unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<NetworkConfig>(&json).unwrap(), c);
    }

    #[test]
    fn bad_interfaces_are_refused() {
        let mut c = config();
        c.interfaces[0].name = "a/b".into();
        assert!(matches!(c.validate(), Err(NetworkError::BadName(_))));
        let mut c = config();
        c.interfaces[0].name = "lo".into();
        assert!(matches!(c.validate(), Err(NetworkError::BadName(_))));
        let mut c = config();
        c.interfaces[0].mtu = 20;
        assert!(matches!(c.validate(), Err(NetworkError::BadMtu { .. })));
        let mut c = config();
        c.interfaces[0].mac = "01:00:5e:00:00:01".parse().unwrap();
        assert!(matches!(c.validate(), Err(NetworkError::NotUnicast { .. })));
        let mut c = config();
        c.interfaces[0].reserved_mac = Some(reserved_mac(0));
        c.validate().unwrap();
        c.interfaces[0].reserved_mac = Some("02:42:ac:11:00:09".parse().unwrap());
        assert!(matches!(
            c.validate(),
            Err(NetworkError::NotReserved { .. })
        ));
        let mut c = config();
        let mut eth1 = eth0();
        eth1.name = "eth1".into();
        eth1.mac = "02:42:ac:11:00:03".parse().unwrap();
        c.interfaces.push(eth1);
        c.interfaces[0].reserved_mac = Some(reserved_mac(1));
        c.interfaces[1].reserved_mac = Some(reserved_mac(1));
        assert!(matches!(
            c.validate(),
            Err(NetworkError::Duplicate {
                what: "reserved NIC",
                ..
            })
        ));
        let mut c = config();
        c.interfaces[0].addresses[0].prefix_len = 33;
        assert!(matches!(c.validate(), Err(NetworkError::BadPrefix(_))));
        let mut c = config();
        c.interfaces.push(eth0());
        assert!(matches!(
            c.validate(),
            Err(NetworkError::Duplicate { what: "name", .. })
        ));
        let mut c = config();
        c.interfaces = vec![eth0(); MAX_INTERFACES + 1];
        assert!(matches!(c.validate(), Err(NetworkError::TooMany { .. })));
    }

    #[test]
    fn routes_must_name_a_configured_interface_of_one_family() {
        let mut c = config();
        c.routes[0].device = "eth1".into();
        assert!(matches!(
            c.validate(),
            Err(NetworkError::UnknownDevice { .. })
        ));
        let mut c = config();
        c.routes[0].destination = Some(IpCidr {
            address: "fd00::".parse().unwrap(),
            prefix_len: 64,
        });
        assert!(matches!(
            c.validate(),
            Err(NetworkError::MixedFamilies { .. })
        ));
    }
}
