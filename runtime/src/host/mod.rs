//! What the host side does around the VM for runc compatibility: OCI hooks
//! ([`hooks`]), placing the sandbox process in the spec's cgroup
//! ([`cgroups`]), entering the caller's network namespace ([`netns`]) and
//! turning `linux.resources` into the VM's size and the guest cgroup's
//! limits ([`resources`]); mount points in a read-only rootfs
//! ([`mountpoint`]).

pub mod cgroups;
pub mod cni;
pub mod hooks;
pub mod mountpoint;
pub mod net;
pub mod netns;
pub mod resources;
