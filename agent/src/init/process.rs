//! The workload process: limits, identity, capabilities, and the exec.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use agent_protocol::container::{ContainerConfig, Process};
use oci_spec::runtime::LinuxCapabilities;

use super::caps;
use super::{check, InitError, Result};

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

fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
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
        if let Some(adj) = process.oom_score_adj() {
            std::fs::write("/proc/self/oom_score_adj", adj.to_string())
                .map_err(|e| InitError::os("oom_score_adj", e))?;
        }
        for r in process.rlimits().iter().flatten() {
            let kind = r.typ().to_string();
            let resource = rlimit_resource(&kind)
                .ok_or_else(|| InitError::Msg(format!("unknown rlimit {kind}")))?;
            let limit = libc::rlimit {
                rlim_cur: r.soft(),
                rlim_max: r.hard(),
            };
            // SAFETY: a valid rlimit for a known resource.
            check(unsafe { libc::setrlimit(resource, &limit) }, || {
                format!("setrlimit {kind}")
            })?;
        }
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
                // SAFETY: NULL-terminated arrays of C strings that outlive the call.
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
        // SAFETY: setsid has no memory effects; failure (already a leader) is fine.
        unsafe { libc::setsid() };
        if p.terminal().unwrap_or(false) {
            // SAFETY: fd 0 is the pty slave given by the agent.
            check(unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) }, || {
                "set the controlling terminal".into()
            })?;
        }
        super::attrs::apply(p, self.linux.as_ref(), self.linux.is_none())?;
        if self.nnp() {
            // SAFETY: prctl with constant arguments.
            let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            check(rc, || "no_new_privs".into())?;
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
        // SAFETY: prctl with constant arguments.
        let rc = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
        check(rc, || "keepcaps".into())?;
        let groups: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
        // SAFETY: a pointer and length of a live vector.
        let rc = unsafe { libc::setgroups(groups.len(), groups.as_ptr()) };
        check(rc, || "setgroups".into())?;
        let (uid, gid) = (user.uid(), user.gid());
        // SAFETY: plain id syscalls.
        let rc = unsafe { libc::setresgid(gid, gid, gid) };
        check(rc, || format!("setgid {gid}"))?;
        // SAFETY: as above.
        let rc = unsafe { libc::setresuid(uid, uid, uid) };
        check(rc, || format!("setuid {uid}"))?;
        caps::apply(c)?;
        let cwd = cstring(&p.cwd().to_string_lossy())?;
        // SAFETY: chdir to a valid path, as the workload's user.
        check(unsafe { libc::chdir(cwd.as_ptr()) }, || {
            format!("chdir to cwd {}", p.cwd().display())
        })?;
        if let Some(mask) = user.umask() {
            // SAFETY: umask cannot fail.
            unsafe { libc::umask(mask as libc::mode_t) };
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
