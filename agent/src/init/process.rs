//! The workload process: limits, identity, capabilities, and the exec.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use agent_protocol::container::{ContainerConfig, Process};
use oci_spec::runtime::LinuxCapabilities;

use nix::sys::resource::Resource;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

use super::caps;
use super::{checked, InitError, Result};

nix::ioctl_write_int_bad!(tiocsctty, libc::TIOCSCTTY);

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A process ready to exec: everything that can fail for a reason the user
/// should hear at create time has been checked.
pub struct Prepared<'a> {
    process: &'a Process,
    seccomp: Option<&'a crate::seccomp::Program>,
    /// The container's `linux` section for an init, `None` for an exec.
    linux: Option<oci_spec::runtime::Linux>,
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| InitError::Msg(format!("{s:?} contains a NUL byte")))
}

fn rlimit_resource(name: &str) -> Option<Resource> {
    Some(match name {
        "RLIMIT_AS" => Resource::RLIMIT_AS,
        "RLIMIT_CORE" => Resource::RLIMIT_CORE,
        "RLIMIT_CPU" => Resource::RLIMIT_CPU,
        "RLIMIT_DATA" => Resource::RLIMIT_DATA,
        "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => Resource::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => Resource::RLIMIT_NICE,
        "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
        "RLIMIT_RSS" => Resource::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => Resource::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => Resource::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => Resource::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => Resource::RLIMIT_STACK,
        _ => return None,
    })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Finds the program like execvp would, with the process's own PATH.
fn lookup(program: &str, env: &[String], cwd: &str) -> Result<String> {
    if program.contains('/') {
        let path = Path::new(cwd).join(program);
        if is_executable(&path) {
            return Ok(program.to_string());
        }
        return Err(InitError::Msg(format!(
            "executable file not found or not executable: {program}"
        )));
    }
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path_var
        .split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(program))
        .find(|candidate| is_executable(candidate))
        .map(|p| p.to_string_lossy().into_owned())
        .ok_or_else(|| InitError::Msg(format!("executable file not found in $PATH: {program}")))
}

/// The user's home from the container's /etc/passwd, else `/`.
fn home(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.len() >= 6 && fields[2].parse() == Ok(uid)).then(|| fields[5].to_string())
            })
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into())
}

/// Sets `oom_score_adj` and the rlimits on this process, for the workload
/// to inherit. Called in the helper before it enters any namespace: raising
/// a hard limit or lowering the OOM score needs CAP_SYS_RESOURCE in the
/// guest's user namespace, which a process in the container's own user
/// namespace lacks (runc sets them from its parent for the same reason).
pub fn apply_limits(process: &Process) -> Result<()> {
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| InitError::os("oom_score_adj", e))?;
    }
    for r in process.rlimits().iter().flatten() {
        let kind = r.typ().to_string();
        let resource = rlimit_resource(&kind)
            .ok_or_else(|| InitError::Msg(format!("unknown rlimit {kind}")))?;
        checked(
            nix::sys::resource::setrlimit(resource, r.soft(), r.hard()),
            || format!("setrlimit {kind}"),
        )?;
    }
    Ok(())
}

impl<'a> Prepared<'a> {
    pub fn new(
        process: &'a Process,
        container: Option<&ContainerConfig>,
        seccomp: Option<&'a crate::seccomp::Program>,
    ) -> Result<Self> {
        let args = process.args().as_deref().unwrap_or_default();
        let env = process.env().as_deref().unwrap_or_default();
        let first = args
            .first()
            .ok_or_else(|| InitError::Msg("process.args is empty".into()))?;
        let cwd = process.cwd().to_string_lossy();
        let program = lookup(first, env, &cwd)?;
        let mut envp: Vec<CString> = env.iter().map(|e| cstring(e)).collect::<Result<_>>()?;
        // Like runc: the environment is the spec's, plus HOME when missing.
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            envp.push(cstring(&format!("HOME={}", home(process.user().uid())))?);
        }
        Ok(Self {
            process,
            seccomp,
            linux: container.map(|c| c.linux()),
            program: cstring(&program)?,
            argv: args.iter().map(|a| cstring(a)).collect::<Result<_>>()?,
            envp,
        })
    }

    /// Drops into the process's identity and execs; returns only on failure.
    pub fn exec(self) -> InitError {
        match self.become_process() {
            Err(e) => e,
            Ok(()) => {
                let mut argv: Vec<*const libc::c_char> =
                    self.argv.iter().map(|a| a.as_ptr()).collect();
                argv.push(std::ptr::null());
                let mut envp: Vec<*const libc::c_char> =
                    self.envp.iter().map(|a| a.as_ptr()).collect();
                envp.push(std::ptr::null());
                // With no_new_privs the filter goes on last, right before
                // execve (runc's order), so it need allow nothing of ours.
                if self.nnp() {
                    if let Some(prog) = self.seccomp {
                        if let Err(e) = crate::seccomp::install(prog) {
                            return InitError::Msg(format!("linux.seccomp: {e}"));
                        }
                    }
                }
                // SAFETY: NULL-terminated arrays of C strings that outlive the
                // call. Raw libc: the seccomp filter is on by now and need allow
                // nothing but execve, while nix's execve would allocate its
                // pointer vectors (brk/mmap) after it.
                unsafe { libc::execve(self.program.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
                InitError::last(format!("exec {}", self.program.to_string_lossy()))
            }
        }
    }

    fn nnp(&self) -> bool {
        self.process.no_new_privileges().unwrap_or(false)
    }

    fn become_process(&self) -> Result<()> {
        let p = self.process;
        // Failure (already a session leader) is fine.
        let _ = nix::unistd::setsid();
        if p.terminal().unwrap_or(false) {
            // SAFETY: TIOCSCTTY takes an int by value; fd 0 is the pty slave
            // given by the agent.
            checked(unsafe { tiocsctty(0, 0) }, || {
                "set the controlling terminal".into()
            })?;
        }
        super::attrs::apply(p, self.linux.as_ref(), self.linux.is_none())?;
        if self.nnp() {
            checked(nix::sys::prctl::set_no_new_privs(), || {
                "no_new_privs".into()
            })?;
        } else if let Some(prog) = self.seccomp {
            // Without no_new_privs the kernel takes a filter only while we
            // hold CAP_SYS_ADMIN: before the capabilities and uid change.
            crate::seccomp::install(prog)
                .map_err(|e| InitError::Msg(format!("linux.seccomp: {e}")))?;
        }
        let user = p.user();
        // No capabilities in the spec means none at all, as with runc.
        let none = no_capabilities();
        let c = p.capabilities().as_ref().unwrap_or(&none);
        caps::drop_bounding(c.bounding().as_ref())?;
        // Keep the permitted set across the uid change; capset fixes it after.
        checked(nix::sys::prctl::set_keepcaps(true), || "keepcaps".into())?;
        let groups: Vec<Gid> = user
            .additional_gids()
            .iter()
            .flatten()
            .map(|&g| Gid::from_raw(g))
            .collect();
        checked(nix::unistd::setgroups(&groups), || "setgroups".into())?;
        let (uid, gid) = (user.uid(), user.gid());
        let (uid_, gid_) = (Uid::from_raw(uid), Gid::from_raw(gid));
        checked(nix::unistd::setresgid(gid_, gid_, gid_), || {
            format!("setgid {gid}")
        })?;
        checked(nix::unistd::setresuid(uid_, uid_, uid_), || {
            format!("setuid {uid}")
        })?;
        caps::apply(c)?;
        checked(nix::unistd::chdir(p.cwd().as_path()), || {
            format!("chdir to cwd {}", p.cwd().display())
        })?;
        if let Some(mask) = user.umask() {
            nix::sys::stat::umask(Mode::from_bits_truncate(mask as libc::mode_t));
        }
        Ok(())
    }
}

/// An empty capability set in every category.
fn no_capabilities() -> LinuxCapabilities {
    let mut c = LinuxCapabilities::default();
    c.set_bounding(None)
        .set_effective(None)
        .set_permitted(None)
        .set_inheritable(None)
        .set_ambient(None);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_uses_the_process_path() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        assert!(lookup("sh", &env, "/").unwrap().ends_with("/sh"));
        let err = lookup("no-such-program-hull", &env, "/").unwrap_err();
        assert_eq!(
            err.to_string(),
            "executable file not found in $PATH: no-such-program-hull"
        );
        assert!(lookup("/bin/sh", &env, "/").is_ok());
        assert!(lookup("./nope", &env, "/").is_err());
    }
}
