//! What hull supports of OCI seccomp profiles (`linux.seccomp`), as the
//! runtime's `features` command reports it (the runtime-spec's
//! `linux.seccomp` features object). The agent compiles profiles with
//! libseccomp 2.5 (Debian 12's, linked statically); its unit tests check that
//! every name listed here compiles.

/// `actions`: every OCI action but `SCMP_ACT_NOTIFY` (no seccomp agent).
pub const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

/// `operators`: all of them.
pub const OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// `archs`: what libseccomp 2.5 (loongarch64, m68k and sh came in 2.6) adds to
/// a filter whose native architecture is x86_64: the little-endian ones
/// (libseccomp refuses to mix byte orders in one filter, as it does under runc).
pub const ARCHITECTURES: &[&str] = &[
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

/// `knownFlags`: the filter flags hull recognises and applies.
pub const KNOWN_FLAGS: &[&str] = SUPPORTED_FLAGS;

/// `supportedFlags`: passed to seccomp(2) as they are (the guest kernel, 6.12,
/// has them all). `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` is refused: it only
/// matters with `SCMP_ACT_NOTIFY`.
pub const SUPPORTED_FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_TSYNC",
];
