//! Reserved NICs: virtio-net NICs the VMM gives a guest whose network
//! namespace had no interface yet when it booted (`ctr run --cni` adds the
//! veth between `create` and `start`). Each has a placeholder MAC
//! ([`is_reserved_mac`]). At boot the agent unbinds them from virtio_net, so
//! that no container sees them ([`set_aside_reserved_nics`]); an interface
//! of `ConfigureNetwork` that names one binds it back ([`Registry::plan`],
//! [`Sysfs::bind`]) and the caller gives the link its real MAC.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use agent_protocol::network::{is_reserved_mac, Interface, MacAddr, MAX_INTERFACES};

/// The virtio_net driver's directory, under the sysfs root.
const VIRTIO_NET_DRIVER: &str = "bus/virtio/drivers/virtio_net";

#[derive(Debug, thiserror::Error)]
pub enum ReservedError {
    #[error("read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{ifname}: reserved MAC {mac}, but {target} is not a virtio device")]
    NotVirtio {
        ifname: String,
        mac: MacAddr,
        target: String,
    },
    #[error("{device}: {action} virtio_net: {source}")]
    Driver {
        device: String,
        action: &'static str,
        source: io::Error,
    },
    #[error("{ifname}: more than {MAX_INTERFACES} reserved NICs; left bound")]
    TooMany { ifname: String },
    #[error("{name}: no reserved NIC has MAC {mac}")]
    Unknown { name: String, mac: MacAddr },
    #[error("{name}: reserved NIC {mac} is named by another interface too")]
    Twice { name: String, mac: MacAddr },
    #[error("{name}: reserved NIC {mac} was already given MAC {given}")]
    Taken {
        name: String,
        mac: MacAddr,
        given: MacAddr,
    },
}

/// Where sysfs is mounted (`/sys`; a fake tree in tests).
#[derive(Debug, Clone)]
pub struct Sysfs {
    root: PathBuf,
}

impl Default for Sysfs {
    fn default() -> Self {
        Sysfs::new("/sys")
    }
}

/// A netdev with a reserved MAC, on virtio device `device` (`virtio3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedNic {
    pub ifname: String,
    pub mac: MacAddr,
    pub device: String,
}

impl Sysfs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Sysfs { root: root.into() }
    }

    /// The netdevs with a reserved MAC, by name; a netdev that cannot be
    /// read, or with a reserved MAC on no virtio device, is an error beside
    /// them.
    pub fn reserved_nics(&self) -> Result<(Vec<ReservedNic>, Vec<ReservedError>), ReservedError> {
        let net = self.root.join("class/net");
        let read = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ReservedError::Read { path, source }
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&net).map_err(read(&net))? {
            names.push(entry.map_err(read(&net))?.file_name());
        }
        names.sort();
        let (mut nics, mut errors) = (Vec::new(), Vec::new());
        for name in names {
            let dir = net.join(&name);
            let ifname = name.to_string_lossy().into_owned();
            let address = dir.join("address");
            let mac = match std::fs::read_to_string(&address) {
                // Not an Ethernet address (lo's is, but all zeroes): not reserved.
                Ok(text) => match text.trim().parse::<MacAddr>() {
                    Ok(mac) if is_reserved_mac(&mac) => mac,
                    _ => continue,
                },
                Err(e) => {
                    errors.push(read(&address)(e));
                    continue;
                }
            };
            let link = dir.join("device");
            let target = match std::fs::read_link(&link) {
                Ok(target) => target,
                Err(e) => {
                    errors.push(read(&link)(e));
                    continue;
                }
            };
            let device = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !is_virtio_device(&device) {
                errors.push(ReservedError::NotVirtio {
                    ifname,
                    mac,
                    target: target.display().to_string(),
                });
                continue;
            }
            nics.push(ReservedNic {
                ifname,
                mac,
                device,
            });
        }
        Ok((nics, errors))
    }

    /// Unbinds virtio device `device` from virtio_net: its netdev goes away.
    pub fn unbind(&self, device: &str) -> Result<(), ReservedError> {
        self.driver_write("unbind", device)
    }

    /// Binds virtio device `device` to virtio_net: its netdev comes back.
    pub fn bind(&self, device: &str) -> Result<(), ReservedError> {
        self.driver_write("bind", device)
    }

    fn driver_write(&self, action: &'static str, device: &str) -> Result<(), ReservedError> {
        let path = self.root.join(VIRTIO_NET_DRIVER).join(action);
        // One write per open, as sysfs wants; the file exists or no driver does.
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| f.write_all(device.as_bytes()))
            .map_err(|source| ReservedError::Driver {
                device: device.to_string(),
                action,
                source,
            })
    }
}

/// `virtio` followed by a number: the name of a device on the virtio bus.
fn is_virtio_device(name: &str) -> bool {
    name.strip_prefix("virtio")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Where a reserved NIC is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Unbound at boot; no link stands for it.
    SetAside,
    /// Bound back for an interface, to be (or already) given `mac`. Kept, so
    /// that the same configuration applied again finds it.
    Bound { mac: MacAddr },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub placeholder: MacAddr,
    pub device: String,
    pub state: State,
}

/// The reserved NICs the agent set aside (at most [`MAX_INTERFACES`]).
#[derive(Debug, Default)]
pub struct Registry {
    entries: Vec<Entry>,
}

/// The process's registry, filled at boot.
pub static REGISTRY: Mutex<Registry> = Mutex::new(Registry::new());

/// Locks `registry`; a panic elsewhere leaves the entries themselves valid.
pub fn lock(registry: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    registry
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What taking one interface's reserved NIC needs: the virtio device, and
/// whether it is still to be bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Take {
    pub placeholder: MacAddr,
    pub device: String,
    pub bind: bool,
}

impl Registry {
    pub const fn new() -> Self {
        Registry {
            entries: Vec::new(),
        }
    }

    #[cfg(test)]
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn knows(&self, placeholder: &MacAddr) -> bool {
        self.entries.iter().any(|e| e.placeholder == *placeholder)
    }

    /// Whether `nic` may be recorded: the registry holds [`MAX_INTERFACES`].
    pub fn room_for(&self, nic: &ReservedNic) -> Result<(), ReservedError> {
        if self.entries.len() >= MAX_INTERFACES {
            return Err(ReservedError::TooMany {
                ifname: nic.ifname.clone(),
            });
        }
        Ok(())
    }

    /// Records a NIC set aside (once per placeholder).
    pub fn insert(&mut self, nic: &ReservedNic) -> Result<(), ReservedError> {
        if self.knows(&nic.mac) {
            return Ok(());
        }
        self.room_for(nic)?;
        self.entries.push(Entry {
            placeholder: nic.mac,
            device: nic.device.clone(),
            state: State::SetAside,
        });
        Ok(())
    }

    /// Checks, before anything changes, that every interface naming a
    /// reserved NIC names one set aside (or already bound for its MAC).
    pub fn plan(&self, interfaces: &[Interface]) -> Result<Vec<Take>, ReservedError> {
        let mut takes = Vec::new();
        for interface in interfaces {
            let Some(placeholder) = interface.reserved_mac else {
                continue;
            };
            if takes.iter().any(|t: &Take| t.placeholder == placeholder) {
                return Err(ReservedError::Twice {
                    name: interface.name.clone(),
                    mac: placeholder,
                });
            }
            let entry = self
                .entries
                .iter()
                .find(|e| e.placeholder == placeholder)
                .ok_or_else(|| ReservedError::Unknown {
                    name: interface.name.clone(),
                    mac: placeholder,
                })?;
            let bind = match entry.state {
                State::SetAside => true,
                State::Bound { mac } if mac == interface.mac => false,
                State::Bound { mac } => {
                    return Err(ReservedError::Taken {
                        name: interface.name.clone(),
                        mac: placeholder,
                        given: mac,
                    })
                }
            };
            takes.push(Take {
                placeholder,
                device: entry.device.clone(),
                bind,
            });
        }
        Ok(takes)
    }

    /// Marks the NIC bound for an interface with `mac`.
    pub fn bound(&mut self, placeholder: MacAddr, mac: MacAddr) {
        if let Some(entry) = self
            .entries
            .iter_mut()
            .find(|e| e.placeholder == placeholder)
        {
            entry.state = State::Bound { mac };
        }
    }
}

/// Unbinds every reserved NIC from virtio_net and records it in `registry`;
/// returns the NICs set aside and the errors met.
pub fn set_aside(sysfs: &Sysfs, registry: &mut Registry) -> (Vec<ReservedNic>, Vec<ReservedError>) {
    let (nics, mut errors) = match sysfs.reserved_nics() {
        Ok(found) => found,
        Err(e) => return (Vec::new(), vec![e]),
    };
    let mut done = Vec::new();
    for nic in nics {
        // Known and visible: bound back for an interface since; leave it.
        if registry.knows(&nic.mac) {
            continue;
        }
        // Room first: a NIC the registry cannot hold stays bound (and visible).
        let step = registry
            .room_for(&nic)
            .and_then(|()| sysfs.unbind(&nic.device))
            .and_then(|()| registry.insert(&nic));
        match step {
            Ok(()) => done.push(nic),
            Err(e) => errors.push(e),
        }
    }
    (done, errors)
}

/// At boot, before the agent reports ready: sets the reserved NICs aside
/// (unbound, invisible to containers) until `ConfigureNetwork` names them.
/// Errors are logged, never fatal: a NIC left bound is merely visible.
pub fn set_aside_reserved_nics() {
    let (done, errors) = set_aside(&Sysfs::default(), &mut lock(&REGISTRY));
    for nic in done {
        crate::console::log(&format!(
            "hull-agent: reserved NIC {} ({}, {}) set aside",
            nic.ifname, nic.device, nic.mac
        ));
    }
    for e in errors {
        crate::console::log(&format!("hull-agent: reserved NICs: {e}"));
    }
}

#[cfg(test)]
#[path = "reserved_tests.rs"]
pub mod tests;
