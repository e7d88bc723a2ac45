//! OCI `linux.devices` and `linux.resources.devices` in the guest.
//!
//! Two halves, used at two places of container creation:
//! - [`create_nodes`] makes the device nodes of `linux.devices` in the
//!   container's rootfs, from the container's child in its new mount
//!   namespace, after the spec mounts (so on the `/dev` tmpfs) and before
//!   pivot_root. Paths are resolved with openat2 `RESOLVE_IN_ROOT`: the
//!   image's symlinks cannot make a node (or a parent directory) land
//!   outside the rootfs.
//! - [`compile`] turns `linux.resources.devices` into a
//!   `BPF_PROG_TYPE_CGROUP_DEVICE` program and [`attach`] loads it and
//!   attaches it to the container's cgroup (v2: the guest kernel has no v1
//!   devices controller), replacing the program an earlier call attached.
//!
//! runc adds devices and rules no spec lists ([`with_runc_defaults`]):
//! the nodes `/dev/{null,zero,full,random,urandom,tty}` and allow rules for
//! them, for ptys, `/dev/ptmx`, `/dev/net/tun` and mknod of any node. The
//! default rules go *after* the spec's, so a spec cannot take them away.
//!
//! As runc does, attach the program once the container's child has built
//! its rootfs (runc sets cgroup resources at `procReady`): the child's
//! mknod calls run inside the container's cgroup, so an earlier program
//! without `m` for those nodes would refuse them.
//!
//! Rule semantics (the program's, and the tests' reference
//! `rules::verdict`): every access bit asked for (`r`, `w`, `m`) is
//! decided by the last rule that matches the device (type, major, minor;
//! `a` and a missing number match anything) and names that bit; the
//! request is allowed when every bit is decided by an allow rule, denied
//! otherwise — nothing matching means deny. So `deny a *:* rwm` at the
//! head of a list (Docker, Podman) is the default, later allows punch
//! holes, and a later deny wins over an earlier allow, also inside a
//! wildcard (runc refuses that case, as cgroup v1 could not express it; a
//! program can). At most [`bpf::MAX_RULES`] rules (the verifier's limits).

mod attach;
mod bpf;
mod defaults;
mod nodes;
mod rules;

#[cfg(test)]
mod interp;
#[cfg(test)]
mod native_tests;
#[cfg(test)]
mod nodes_tests;

pub use attach::attach;
pub use bpf::{compile, BpfInsn};
pub use defaults::with_runc_defaults;
pub use nodes::create_nodes;

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    #[error("device cgroup rule {index}: {reason}")]
    InvalidRule { index: usize, reason: String },
    #[error("device {path}: {reason}")]
    InvalidDevice { path: PathBuf, reason: String },
    #[error("device {path}: a different file exists there ({found})")]
    Exists { path: PathBuf, found: String },
    #[error("device {path}: {what}: {source}")]
    Node {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    #[error("too many device cgroup rules ({count}, at most {max})")]
    TooManyRules { count: usize, max: usize },
    #[error("cgroup {path}: {what}: {source}")]
    Cgroup {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    #[error("load the device cgroup program: {source}{}", verifier_log(.log))]
    Load { source: io::Error, log: String },
}

fn verifier_log(log: &str) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!(" (verifier: {})", log.trim())
    }
}

/// For tests needing what this host may lack (root, cgroup2, bpf): `true`
/// when `available`; otherwise says why the test is skipped, or fails it
/// under `CI=true`.
#[cfg(test)]
fn available_or_skip(available: bool, test: &str, why: &str) -> bool {
    if available {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: {why} (CI=true: not skipping)"
    );
    eprintln!("SKIPPED {test}: {why}");
    false
}
