//! OCI seccomp profiles (`linux.seccomp`), compiled with libseccomp the way
//! runc and youki do, and installed with seccomp(2) just before execve.
//!
//! Two steps, in two processes:
//! - [`compile`] runs in the agent, before the container's processes are
//!   forked: it builds a libseccomp filter context from the profile and
//!   exports its classic-BPF program into a [`Program`] (plain data, which
//!   crosses to the container-init helper as JSON).
//! - [`install`] runs in the container's child as one of its last steps: one
//!   `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)` call, no allocation.
//!
//! Semantics (runc's, unless said otherwise):
//! - `defaultAction` / `defaultErrnoRet`; `SCMP_ACT_ERRNO` and
//!   `SCMP_ACT_TRACE` without an errno return `EPERM`. `errnoRet` on any other
//!   action has no meaning and is ignored, as runc and crun ignore it.
//! - `architectures`: every `SCMP_ARCH_*` name is added to the filter; the
//!   native architecture is always there. Syscalls arriving under any other
//!   architecture kill the thread (libseccomp's default bad-arch action).
//! - `syscalls[].names`: a name libseccomp does not know is skipped and
//!   logged on the console and listed in [`Program::skipped`], as runc skips
//!   it with a warning. An
//!   empty `names` list is refused (the spec requires one entry).
//! - A rule whose action (with its errno) equals the default action is
//!   skipped: it would change nothing, and libseccomp refuses it.
//! - `args`: `index` 0–5, `value`, `op` `SCMP_CMP_NE/LT/LE/EQ/GE/GT/MASKED_EQ`;
//!   for `SCMP_CMP_MASKED_EQ`, `value` is the mask and `valueTwo` (0 when
//!   absent) the value compared after masking; other operators ignore
//!   `valueTwo`. Conditions of one rule are ANDed, except that a rule with two
//!   conditions on the same argument becomes one rule per condition (ORed),
//!   which is what runc does since libseccomp cannot AND them.
//! - Refused by name: `SCMP_ACT_NOTIFY`, `listenerPath`, `listenerMetadata`
//!   (there is no seccomp agent in the guest), the flag
//!   `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (only meaningful with notify).
//!   `SECCOMP_FILTER_FLAG_TSYNC`, `_LOG` and `_SPEC_ALLOW` are passed to
//!   seccomp(2). What `features` reports is in [`agent_protocol::seccomp`].
//!
//! Not done (runc does it): the "ENOSYS patch" that makes syscalls newer than
//! the profile return ENOSYS instead of the default action.
//!
//! ## What the caller of [`install`] must do
//! The kernel accepts a filter only from a thread that has `no_new_privs` set
//! or holds `CAP_SYS_ADMIN` (otherwise `EACCES`). So, as runc does:
//! - `process.noNewPrivileges` true: set `PR_SET_NO_NEW_PRIVS` first, do every
//!   other step (setgroups, setresgid/uid, capabilities, chdir, …) and call
//!   [`install`] last, right before execve, so the profile has to allow as few
//!   of the runtime's own syscalls as possible;
//! - `process.noNewPrivileges` false: call [`install`] *before* dropping
//!   capabilities and changing uid (while `CAP_SYS_ADMIN` is still held). The
//!   runtime's remaining syscalls then run under the filter; Docker's and
//!   Podman's default profiles allow all of them.

mod compile;
mod install;
#[cfg(test)]
mod tests;

use std::io;

use serde::{Deserialize, Serialize};

pub use compile::compile;
pub use install::install;

/// The most instructions the kernel takes in one classic-BPF program.
pub const MAX_INSTRUCTIONS: usize = libc::BPF_MAXINSNS as usize;
/// Size of one `struct sock_filter` instruction, in bytes.
const INSTRUCTION_BYTES: usize = 8;
/// The seccomp(2) filter flags a profile may ask for.
pub const SUPPORTED_FLAGS: u32 = (libc::SECCOMP_FILTER_FLAG_TSYNC
    | libc::SECCOMP_FILTER_FLAG_LOG
    | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW) as u32;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("linux.seccomp.{field}: {what} is not supported")]
    Unsupported { field: String, what: String },
    #[error("linux.seccomp.{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("linux.seccomp.{field}: libseccomp: {source}")]
    Libseccomp {
        field: String,
        source: libseccomp::error::SeccompError,
    },
    #[error("export the seccomp filter: {source}")]
    Export { source: io::Error },
    #[error(
        "seccomp program of {len_bytes} bytes is not 1 to {MAX_INSTRUCTIONS} BPF instructions"
    )]
    BadProgram { len_bytes: usize },
    #[error("seccomp filter flags {flags:#x} are not all supported ({SUPPORTED_FLAGS:#x})")]
    BadFlags { flags: u32 },
    #[error("seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x}): {source}")]
    Install { flags: u32, source: io::Error },
    #[error("seccomp filter not installed: thread {tid} cannot be synchronised (TSYNC)")]
    Tsync { tid: i64 },
}

/// A compiled profile: the classic-BPF program and the seccomp(2) flags.
/// Validated when made (by [`compile`] or when deserialised): 1 to
/// [`MAX_INSTRUCTIONS`] instructions, only [`SUPPORTED_FLAGS`].
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "ProgramWire", into = "ProgramWire")]
pub struct Program {
    filter: Vec<libc::sock_filter>,
    flags: u32,
    /// Syscall names of the profile that libseccomp did not know (skipped);
    /// only for the compiling side to log, not sent along.
    skipped: Vec<String>,
}

impl Program {
    fn new(filter: Vec<libc::sock_filter>, flags: u32) -> Result<Self, SeccompError> {
        if filter.is_empty() || filter.len() > MAX_INSTRUCTIONS {
            return Err(SeccompError::BadProgram {
                len_bytes: filter.len() * INSTRUCTION_BYTES,
            });
        }
        if flags & !SUPPORTED_FLAGS != 0 {
            return Err(SeccompError::BadFlags { flags });
        }
        Ok(Self {
            filter,
            flags,
            skipped: Vec::new(),
        })
    }

    /// Parses the bytes libseccomp exports (native-endian `struct sock_filter`s).
    fn from_bpf_bytes(bytes: &[u8], flags: u32) -> Result<Self, SeccompError> {
        if !bytes.len().is_multiple_of(INSTRUCTION_BYTES) {
            return Err(SeccompError::BadProgram {
                len_bytes: bytes.len(),
            });
        }
        let filter = bytes
            .chunks_exact(INSTRUCTION_BYTES)
            .map(|b| libc::sock_filter {
                code: u16::from_ne_bytes([b[0], b[1]]),
                jt: b[2],
                jf: b[3],
                k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            })
            .collect();
        Self::new(filter, flags)
    }

    /// Number of BPF instructions (never 0).
    #[cfg(test)]
    pub fn instructions(&self) -> usize {
        self.filter.len()
    }

    /// The seccomp(2) flags (`SECCOMP_FILTER_FLAG_*`).
    #[cfg(test)]
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Syscall names of the profile that were skipped as unknown.
    #[cfg(test)]
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("instructions", &self.filter.len())
            .field("flags", &self.flags)
            .field("skipped", &self.skipped)
            .finish()
    }
}

/// [`Program`] on the wire: instructions as `[code, jt, jf, k]`.
#[derive(Serialize, Deserialize)]
struct ProgramWire {
    filter: Vec<(u16, u8, u8, u32)>,
    flags: u32,
}

impl TryFrom<ProgramWire> for Program {
    type Error = SeccompError;

    fn try_from(wire: ProgramWire) -> Result<Self, SeccompError> {
        let filter = wire
            .filter
            .into_iter()
            .map(|(code, jt, jf, k)| libc::sock_filter { code, jt, jf, k })
            .collect();
        Self::new(filter, wire.flags)
    }
}

impl From<Program> for ProgramWire {
    fn from(p: Program) -> Self {
        Self {
            filter: p.filter.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect(),
            flags: p.flags,
        }
    }
}
