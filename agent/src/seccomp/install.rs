//! Loading a compiled [`Program`] into the calling thread with seccomp(2).

use std::io;

use super::{Program, SeccompError};

/// Installs `prog` on the calling thread (all threads with
/// `SECCOMP_FILTER_FLAG_TSYNC`). One syscall and no allocation, so it may run
/// in a forked child of a multi-threaded process and right before execve.
///
/// The caller must have set `no_new_privs` or still hold `CAP_SYS_ADMIN`;
/// see the module docs for where to call it.
pub fn install(prog: &Program) -> Result<(), SeccompError> {
    let fprog = libc::sock_fprog {
        // Program::new keeps the length within BPF_MAXINSNS, which fits.
        len: prog.filter.len() as libc::c_ushort,
        // The kernel only reads the program.
        filter: prog.filter.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `prog.filter`, which outlives the call; the
    // kernel copies the program and does not keep the pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            prog.flags as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    match rc {
        0 => Ok(()),
        // With TSYNC, a positive result is the thread that could not follow.
        tid if tid > 0 => Err(SeccompError::Tsync { tid }),
        _ => Err(SeccompError::Install {
            flags: prog.flags,
            source: io::Error::last_os_error(),
        }),
    }
}
