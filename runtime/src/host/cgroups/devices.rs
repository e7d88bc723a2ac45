//! The devices hull's own host process may open: the device filter the
//! runtime attaches to the cgroup v2 directory its sandbox process joins
//! (so the VMM, the stand-in and the hooks it runs are filtered too).
//!
//! runc attaches the container's device rules to the container's cgroup;
//! hull applies those in the guest, and on the host filters what a VM
//! needs instead. Two reasons:
//! - **Podman pods.** A pod's cgroup carries a program that denies every
//!   device and yields to a child cgroup's program (attached without
//!   `BPF_F_ALLOW_MULTI`): without a program of its own, the sandbox
//!   process could not open `/dev/null`, nor `/dev/kvm`.
//! - **Containment.** A VMM taken over by its guest still opens only
//!   these devices.
//!
//! Read and write only, no mknod (the virtio-fs share refuses device
//! nodes from the guest anyway).

use device_filter::{BpfInsn, FilterError};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// Character devices `(major, minor)` (`None`: every minor).
const ALLOWED: [(i64, Option<i64>); 17] = [
    (1, Some(3)),    // /dev/null
    (1, Some(5)),    // /dev/zero
    (1, Some(7)),    // /dev/full
    (1, Some(8)),    // /dev/random
    (1, Some(9)),    // /dev/urandom
    (5, Some(0)),    // /dev/tty
    (5, Some(2)),    // /dev/ptmx (the console relay's ptys)
    (10, Some(232)), // /dev/kvm
    (10, Some(200)), // /dev/net/tun
    (136, None),     // /dev/pts/*: Unix98 pty slaves, majors 136–143
    (137, None),
    (138, None),
    (139, None),
    (140, None),
    (141, None),
    (142, None),
    (143, None),
];

/// The rules of [`ALLOWED`]: everything else is denied.
pub fn host_rules() -> Vec<LinuxDeviceCgroup> {
    ALLOWED
        .iter()
        .map(|&(major, minor)| {
            let mut r = LinuxDeviceCgroup::default();
            r.set_allow(true)
                .set_typ(Some(LinuxDeviceType::C))
                .set_major(Some(major))
                .set_minor(minor)
                .set_access(Some("rw".into()));
            r
        })
        .collect()
}

/// [`host_rules`] compiled.
pub fn host_program() -> Result<Vec<BpfInsn>, FilterError> {
    device_filter::compile(&host_rules())
}
