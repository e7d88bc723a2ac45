//! The devices and cgroup rules runc gives every container
//! (libcontainer/specconv `AllowedDevices`), whatever the spec says.

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

/// The default nodes: `(path, major, minor)`, all character devices.
const NODES: [(&str, i64, i64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Mode of the default nodes (and of spec nodes without `fileMode`).
pub const DEFAULT_FILE_MODE: u32 = 0o666;

fn char_device(path: &str, major: i64, minor: i64) -> LinuxDevice {
    let mut d = LinuxDevice::default();
    d.set_path(path.into())
        .set_typ(LinuxDeviceType::C)
        .set_major(major)
        .set_minor(minor)
        .set_file_mode(Some(DEFAULT_FILE_MODE))
        .set_uid(Some(0))
        .set_gid(Some(0));
    d
}

fn rule(
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(true)
        .set_typ(Some(typ))
        .set_major(major)
        .set_minor(minor)
        .set_access(Some(access.into()));
    r
}

/// `/dev/{null,zero,full,random,urandom,tty}`, mode 0666, owned by root.
pub fn default_devices() -> Vec<LinuxDevice> {
    NODES
        .iter()
        .map(|&(path, major, minor)| char_device(path, major, minor))
        .collect()
}

/// runc's allow rules: mknod of any character or block node, the default
/// nodes, ptys (136:*), `/dev/ptmx` (5:2) and `/dev/net/tun` (10:200).
pub fn default_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    let mut rules = vec![rule(C, None, None, "m"), rule(B, None, None, "m")];
    rules.extend(
        NODES
            .iter()
            .map(|&(_, major, minor)| rule(C, Some(major), Some(minor), "rwm")),
    );
    rules.push(rule(C, Some(136), None, "rwm"));
    rules.push(rule(C, Some(5), Some(2), "rwm"));
    rules.push(rule(C, Some(10), Some(200), "rwm"));
    rules
}

/// What runc makes of a spec's `linux.devices` and
/// `linux.resources.devices`: the default nodes whose path the spec does
/// not list come first, then the spec's nodes; the spec's rules come first,
/// then the default rules (so they cannot be taken away, as with runc).
pub fn with_runc_defaults(
    devices: &[LinuxDevice],
    rules: &[LinuxDeviceCgroup],
) -> (Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>) {
    let mut all_devices: Vec<LinuxDevice> = default_devices()
        .into_iter()
        .filter(|d| !devices.iter().any(|s| s.path() == d.path()))
        .collect();
    all_devices.extend(devices.iter().cloned());
    let mut all_rules = rules.to_vec();
    all_rules.extend(default_rules());
    (all_devices, all_rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn spec_nodes_replace_defaults_of_the_same_path() {
        let mut tty = char_device("/dev/tty", 5, 0);
        tty.set_file_mode(Some(0o600));
        let fuse = char_device("/dev/fuse", 10, 229);
        let deny: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":false,"access":"rwm"}"#).unwrap();
        let (devices, rules) = with_runc_defaults(&[tty, fuse], std::slice::from_ref(&deny));
        let paths: Vec<&Path> = devices.iter().map(|d| d.path().as_path()).collect();
        assert_eq!(
            paths,
            [
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty",
                "/dev/fuse"
            ]
            .map(Path::new)
        );
        assert_eq!(devices[5].file_mode(), Some(0o600));
        assert_eq!(rules[0], deny);
        assert_eq!(rules.len(), 1 + default_rules().len());
        assert_eq!(rules.last().unwrap().to_string(), "c 10:200 rwm");
    }
}
