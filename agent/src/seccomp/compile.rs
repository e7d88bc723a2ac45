//! Profile → libseccomp filter context → exported BPF ([`Program`]).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::FromRawFd;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};

use super::{Program, SeccompError};

/// Syscalls take at most this many arguments.
const SYSCALL_ARGS: usize = 6;
/// errno of `SCMP_ACT_ERRNO` / `SCMP_ACT_TRACE` when the profile gives none.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

type Result<T> = std::result::Result<T, SeccompError>;

/// Compiles an OCI seccomp profile (see the module docs for the semantics).
/// Runs in the agent (in the guest, so libseccomp probes the kernel that will
/// run the filter), before any fork; the result is handed to
/// [`super::install`]. Unknown syscall names are logged on the console and
/// listed in [`Program::skipped`].
pub fn compile(profile: &LinuxSeccomp) -> Result<Program> {
    if profile.listener_path().is_some() {
        return Err(unsupported(
            "listenerPath",
            "a seccomp agent (SCMP_ACT_NOTIFY)",
        ));
    }
    if profile.listener_metadata().is_some() {
        return Err(unsupported(
            "listenerMetadata",
            "a seccomp agent (SCMP_ACT_NOTIFY)",
        ));
    }
    let flags = flags(profile.flags().as_deref().unwrap_or_default())?;
    let default = action(
        profile.default_action(),
        profile.default_errno_ret(),
        "defaultAction",
        "defaultErrnoRet",
    )?;
    let mut ctx = ScmpFilterContext::new(default).map_err(lib_err("defaultAction"))?;
    for (i, arch) in profile.architectures().iter().flatten().enumerate() {
        ctx.add_arch(scmp_arch(*arch))
            .map_err(lib_err(&format!("architectures[{i}] ({arch})")))?;
    }
    let mut skipped = Vec::new();
    for (i, rule) in profile.syscalls().iter().flatten().enumerate() {
        add_rule(
            &mut ctx,
            default,
            &format!("syscalls[{i}]"),
            rule,
            &mut skipped,
        )?;
    }
    let mut program = Program::from_bpf_bytes(&export(&ctx)?, flags)?;
    if !skipped.is_empty() {
        // As runc: a name this libseccomp does not know is not an error.
        crate::console::log(&format!(
            "hull-agent: seccomp: unknown syscalls skipped: {}",
            skipped.join(", ")
        ));
    }
    program.skipped = skipped;
    Ok(program)
}

fn unsupported(field: &str, what: &str) -> SeccompError {
    SeccompError::Unsupported {
        field: field.into(),
        what: what.into(),
    }
}

fn lib_err(field: &str) -> impl FnOnce(libseccomp::error::SeccompError) -> SeccompError + '_ {
    move |source| SeccompError::Libseccomp {
        field: field.into(),
        source,
    }
}

fn flags(flags: &[LinuxSeccompFilterFlag]) -> Result<u32> {
    flags.iter().enumerate().try_fold(0, |all, (i, flag)| {
        let bit = match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                return Err(unsupported(&format!("flags[{i}]"), &flag.to_string()))
            }
        };
        Ok(all | bit as u32)
    })
}

/// The libseccomp action of an OCI action; `errno` is the profile's
/// `errnoRet`/`defaultErrnoRet` (ignored, as by runc, for other actions).
fn action(
    action: LinuxSeccompAction,
    errno: Option<u32>,
    field: &str,
    errno_field: &str,
) -> Result<ScmpAction> {
    let ret = || {
        let errno = errno.unwrap_or(DEFAULT_ERRNO);
        u16::try_from(errno).map_err(|_| SeccompError::Invalid {
            field: errno_field.into(),
            reason: format!("{errno} does not fit the 16 bits of a seccomp return value"),
        })
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(ret()?)),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(ret()?),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(unsupported(
                field,
                "SCMP_ACT_NOTIFY (no seccomp agent in the guest)",
            ))
        }
    })
}

fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

fn condition(arg: &LinuxSeccompArg, field: &str) -> Result<ScmpArgCompare> {
    let index = u32::try_from(arg.index())
        .ok()
        .filter(|i| (*i as usize) < SYSCALL_ARGS)
        .ok_or_else(|| SeccompError::Invalid {
            field: format!("{field}.index"),
            reason: format!("{} is not a syscall argument (0 to 5)", arg.index()),
        })?;
    let (op, datum) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, arg.value()),
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    Ok(ScmpArgCompare::new(index, op, datum))
}

fn add_rule(
    ctx: &mut ScmpFilterContext,
    default: ScmpAction,
    field: &str,
    rule: &LinuxSyscall,
    skipped: &mut Vec<String>,
) -> Result<()> {
    if rule.names().is_empty() {
        return Err(SeccompError::Invalid {
            field: format!("{field}.names"),
            reason: "no syscall named".into(),
        });
    }
    let act = action(
        rule.action(),
        rule.errno_ret(),
        &format!("{field}.action"),
        &format!("{field}.errnoRet"),
    )?;
    let args = rule.args().as_deref().unwrap_or_default();
    let conditions = args
        .iter()
        .enumerate()
        .map(|(i, arg)| condition(arg, &format!("{field}.args[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    if act == default {
        return Ok(());
    }
    let mut per_index = [0usize; SYSCALL_ARGS];
    for arg in args {
        per_index[arg.index()] += 1;
    }
    let split = per_index.iter().any(|n| *n > 1);
    for name in rule.names() {
        let Ok(syscall) = ScmpSyscall::from_name(name) else {
            skipped.push(name.clone());
            continue;
        };
        let what = format!("{field} ({name})");
        if split {
            for c in &conditions {
                ctx.add_rule_conditional(act, syscall, std::slice::from_ref(c))
                    .map_err(lib_err(&what))?;
            }
        } else {
            ctx.add_rule_conditional(act, syscall, &conditions)
                .map_err(lib_err(&what))?;
        }
    }
    Ok(())
}

/// The filter's BPF, through a memfd (libseccomp 2.5 exports only to an fd).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>> {
    let err = |source| SeccompError::Export { source };
    // SAFETY: a NUL-terminated name and plain flags.
    let fd = unsafe { libc::memfd_create(c"hull-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is fresh and owned by nobody else.
    let mut file = unsafe { File::from_raw_fd(fd) };
    ctx.export_bpf(&file).map_err(lib_err("export"))?;
    file.seek(SeekFrom::Start(0)).map_err(err)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(err)?;
    Ok(bytes)
}
