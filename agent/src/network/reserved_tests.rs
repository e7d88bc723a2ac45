//! Setting reserved NICs aside against a fake sysfs tree.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use agent_protocol::network::reserved_mac;

use super::*;

/// A fake sysfs root: `class/net/<if>/{address,device}` and the
/// virtio_net driver's `bind` and `unbind` files. Removed on drop.
pub struct FakeSysfs {
    pub root: PathBuf,
}

impl FakeSysfs {
    pub fn new(name: &str) -> Self {
        let root =
            std::env::temp_dir().join(format!("hull-reserved-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let driver = root.join(VIRTIO_NET_DRIVER);
        std::fs::create_dir_all(&driver).unwrap();
        std::fs::create_dir_all(root.join("class/net")).unwrap();
        std::fs::write(driver.join("bind"), "").unwrap();
        std::fs::write(driver.join("unbind"), "").unwrap();
        FakeSysfs { root }
    }

    /// A netdev `ifname` with `address`, on device `device` (a path under
    /// `devices/`), if any.
    pub fn netdev(&self, ifname: &str, address: &str, device: Option<&str>) {
        let dir = self.root.join("class/net").join(ifname);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("address"), format!("{address}\n")).unwrap();
        if let Some(device) = device {
            symlink(
                Path::new("../../../devices").join(device),
                dir.join("device"),
            )
            .unwrap();
        }
    }

    pub fn written(&self, action: &str) -> String {
        std::fs::read_to_string(self.root.join(VIRTIO_NET_DRIVER).join(action)).unwrap()
    }

    pub fn sysfs(&self) -> Sysfs {
        Sysfs::new(&self.root)
    }
}

impl Drop for FakeSysfs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn nic(n: u8) -> ReservedNic {
    ReservedNic {
        ifname: format!("eth{n}"),
        mac: reserved_mac(n),
        device: format!("virtio{n}"),
    }
}

#[test]
fn only_reserved_virtio_nics_are_set_aside() {
    let fake = FakeSysfs::new("set-aside");
    fake.netdev("lo", "00:00:00:00:00:00", None);
    fake.netdev("eth0", "02:42:ac:11:00:02", Some("pci0000:00/virtio1"));
    fake.netdev("eth1", &reserved_mac(3).to_string(), Some("mmio/virtio3"));
    fake.netdev("sit0", "00:00:00:00", None);
    fake.netdev("eth2", &reserved_mac(4).to_string(), Some("platform/e1000"));
    let mut registry = Registry::new();
    let (done, errors) = set_aside(&fake.sysfs(), &mut registry);
    assert_eq!(
        done,
        vec![ReservedNic {
            ifname: "eth1".into(),
            mac: reserved_mac(3),
            device: "virtio3".into(),
        }]
    );
    assert_eq!(fake.written("unbind"), "virtio3");
    assert_eq!(fake.written("bind"), "");
    assert_eq!(
        registry.entries(),
        [Entry {
            placeholder: reserved_mac(3),
            device: "virtio3".into(),
            state: State::SetAside,
        }]
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors[0].to_string(),
        "eth2: reserved MAC 0e:68:75:6c:6c:04, but ../../../devices/platform/e1000 is not a virtio device"
    );
    // Once more (the NIC is gone after an unbind): nothing is forgotten.
    std::fs::remove_dir_all(fake.root.join("class/net/eth1")).unwrap();
    let (done, _) = set_aside(&fake.sysfs(), &mut registry);
    assert!(done.is_empty());
    assert_eq!(registry.entries().len(), 1);
}

#[test]
fn a_failed_unbind_is_reported_and_not_recorded() {
    let fake = FakeSysfs::new("no-driver");
    fake.netdev("eth0", &reserved_mac(0).to_string(), Some("virtio0"));
    std::fs::remove_file(fake.root.join(VIRTIO_NET_DRIVER).join("unbind")).unwrap();
    let mut registry = Registry::new();
    let (done, errors) = set_aside(&fake.sysfs(), &mut registry);
    assert!(done.is_empty());
    assert!(registry.entries().is_empty());
    assert!(
        matches!(&errors[..], [ReservedError::Driver { device, action: "unbind", .. }] if device == "virtio0"),
        "{errors:?}"
    );
}

#[test]
fn no_sysfs_is_an_error_not_a_panic() {
    let mut registry = Registry::new();
    let (done, errors) = set_aside(&Sysfs::new("/nonexistent/hull-sysfs"), &mut registry);
    assert!(done.is_empty());
    assert!(
        matches!(&errors[..], [ReservedError::Read { .. }]),
        "{errors:?}"
    );
}

#[test]
fn the_registry_is_bounded() {
    let mut registry = Registry::new();
    for n in 0..MAX_INTERFACES as u8 {
        registry.insert(&nic(n)).unwrap();
    }
    // The same one again is no new entry.
    registry.insert(&nic(0)).unwrap();
    assert!(matches!(
        registry.insert(&nic(MAX_INTERFACES as u8)),
        Err(ReservedError::TooMany { .. })
    ));
    assert_eq!(registry.entries().len(), MAX_INTERFACES);
}

#[test]
fn a_plan_binds_each_nic_once_for_one_mac() {
    let mut registry = Registry::new();
    registry.insert(&nic(1)).unwrap();
    let mac: MacAddr = "02:00:00:00:00:0a".parse().unwrap();
    let mut interface = Interface {
        name: "eth0".into(),
        mac,
        reserved_mac: Some(reserved_mac(1)),
        mtu: 1500,
        addresses: vec![],
    };
    let take = Take {
        placeholder: reserved_mac(1),
        device: "virtio1".into(),
        bind: true,
    };
    let plan = registry.plan(std::slice::from_ref(&interface)).unwrap();
    assert_eq!(plan, std::slice::from_ref(&take));
    registry.bound(reserved_mac(1), mac);
    assert_eq!(
        registry.plan(std::slice::from_ref(&interface)).unwrap(),
        [Take {
            bind: false,
            ..take
        }]
    );
    let mut other = interface.clone();
    other.name = "eth1".into();
    other.mac = "02:00:00:00:00:0c".parse().unwrap();
    let error = registry.plan(&[interface.clone(), other]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "eth1: reserved NIC 0e:68:75:6c:6c:01 is named by another interface too"
    );
    interface.mac = "02:00:00:00:00:0b".parse().unwrap();
    let error = registry.plan(&[interface.clone()]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "eth0: reserved NIC 0e:68:75:6c:6c:01 was already given MAC 02:00:00:00:00:0a"
    );
    interface.reserved_mac = Some(reserved_mac(2));
    let error = registry.plan(&[interface]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "eth0: no reserved NIC has MAC 0e:68:75:6c:6c:02"
    );
}
