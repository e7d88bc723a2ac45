//! Device cgroup rules (OCI `linux.resources.devices`) as a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program, loaded and attached to a cgroup
//! v2 directory. Two users: the agent filters each container's devices in
//! the guest; the runtime filters its own host process (the sandbox, the
//! VMM, the stand-in) to the devices a VM needs.
//!
//! [`compile`] turns the rules into a program and [`attach`] loads it and
//! attaches it to a cgroup, replacing the program an earlier call attached.
//! [`with_runc_defaults`] adds the devices and rules runc gives every
//! container whatever its spec says: the nodes
//! `/dev/{null,zero,full,random,urandom,tty}` and allow rules for them, for
//! ptys, `/dev/ptmx`, `/dev/net/tun` and mknod of any node. The default
//! rules go *after* the spec's, so a spec cannot take them away.
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
//! program can). At most [`MAX_RULES`] rules (the verifier's limits).

mod attach;
mod bpf;
mod defaults;
mod rules;

#[cfg(test)]
mod interp;
#[cfg(test)]
mod native_tests;

pub use attach::attach;
pub use bpf::{compile, BpfInsn, MAX_RULES};
pub use defaults::{with_runc_defaults, DEFAULT_FILE_MODE};

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("device cgroup rule {index}: {reason}")]
    InvalidRule { index: usize, reason: String },
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
/// under `CI=true`. The agent's tests use it too (feature `testing`).
#[cfg(any(test, feature = "testing"))]
pub fn available_or_skip(available: bool, test: &str, why: &str) -> bool {
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
