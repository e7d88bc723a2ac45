//! The sync pipe between `hull create` (parent) and the sandbox process it
//! re-executes (child), and the same for `exec --detach`.
//!
//! The child finds the pipe's write end as fd [`SYNC_FD`] and the
//! environment variable [`CHILD_ENV`] naming its role. It writes one JSON
//! line, `{"ready":true}`, `{"pid":N}` (ready, and the caller's pid is N,
//! the container's stand-in) or `{"error":"…"}`, and closes the pipe. The
//! parent reads to end of file: no line means the child died first.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use serde::{Deserialize, Serialize};

/// The descriptor the child finds the sync pipe on.
pub const SYNC_FD: RawFd = 3;
/// Names the child's role (`sandbox`, `exec`); absent in a parent.
pub const CHILD_ENV: &str = "_HULL_CHILD";
/// Longest report accepted from a child.
const MAX_REPORT: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("cannot create the sync pipe: {0}")]
    Pipe(io::Error),
    #[error("cannot start {what}: {source}")]
    Spawn { what: String, source: io::Error },
    #[error("cannot read the report of {what}: {source}")]
    Read { what: String, source: io::Error },
    #[error("{0}")]
    Failed(String),
    #[error("{what} exited before it was ready ({status})")]
    Died { what: String, status: String },
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Report {
    Ready(bool),
    Pid(i32),
    Error(String),
}

/// How the child's stdio is set up.
pub enum ChildStdio {
    /// The parent's own descriptors 0, 1 and 2.
    Inherit,
    /// A terminal: the child becomes a session leader with it as its
    /// controlling terminal and stdio.
    Terminal(OwnedFd),
}

/// A started child that has not reported yet.
#[derive(Debug)]
pub struct Pending {
    child: Child,
    report: File,
    what: String,
}

/// Starts `exe args…` as a child with role `role` (see [`CHILD_ENV`]) in a
/// new session, with the sync pipe on [`SYNC_FD`].
pub fn spawn(
    exe: &Path,
    args: &[String],
    role: &str,
    stdio: ChildStdio,
) -> Result<Pending, SyncError> {
    let (read, write) = pipe().map_err(SyncError::Pipe)?;
    let what = format!("the {role} process");
    let mut cmd = Command::new(exe);
    cmd.args(args).env(CHILD_ENV, role);
    let terminal = match stdio {
        ChildStdio::Inherit => None,
        ChildStdio::Terminal(tty) => {
            let dup = |fd: &OwnedFd| -> Result<Stdio, SyncError> {
                fd.try_clone()
                    .map(Stdio::from)
                    .map_err(|source| SyncError::Spawn {
                        what: what.clone(),
                        source,
                    })
            };
            cmd.stdin(dup(&tty)?).stdout(dup(&tty)?).stderr(dup(&tty)?);
            Some(tty)
        }
    };
    let sync_raw = write.as_raw_fd();
    let with_tty = terminal.is_some();
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe calls (dup2, fcntl, close_range, setsid, ioctl).
    // Raw libc on purpose: a child of a multi-threaded process, where
    // nothing may allocate or take a lock.
    unsafe {
        cmd.pre_exec(move || {
            sync_fd_in_child(sync_raw)?;
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if with_tty && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let child = cmd.spawn().map_err(|source| SyncError::Spawn {
        what: what.clone(),
        source,
    })?;
    drop(write);
    drop(terminal);
    Ok(Pending {
        child,
        report: File::from(read),
        what,
    })
}

/// In a forked child, before exec: puts `raw` on [`SYNC_FD`] (inherited
/// across exec) and marks every descriptor above it close-on-exec.
/// Whatever the caller leaked to us (containerd's shim leaks its ttrpc
/// socket and an inotify fd) must not live on in the child (closing
/// outright would also close std's exec-error pipe).
///
/// # Safety
/// Only between fork and exec: it makes async-signal-safe calls only
/// (fcntl, dup2, close_range).
pub unsafe fn sync_fd_in_child(raw: RawFd) -> io::Result<()> {
    // SAFETY: plain descriptor calls on numbers, no pointers.
    unsafe {
        if raw == SYNC_FD {
            let flags = libc::fcntl(SYNC_FD, libc::F_GETFD);
            if flags < 0 || libc::fcntl(SYNC_FD, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(io::Error::last_os_error());
            }
        } else if libc::dup2(raw, SYNC_FD) < 0 {
            return Err(io::Error::last_os_error());
        }
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
        libc::syscall(
            libc::SYS_close_range,
            SYNC_FD + 1,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        );
    }
    Ok(())
}

impl Pending {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for the child's report. On success the child is left running
    /// (it is not reaped: the caller's reaper will be), with the pid it
    /// reported, if any. On failure it has been waited for.
    pub fn wait_ready(mut self) -> Result<(Child, Option<i32>), SyncError> {
        let mut text = String::new();
        let read = (&mut self.report)
            .take(MAX_REPORT)
            .read_to_string(&mut text);
        let report = match read {
            Ok(_) => text
                .lines()
                .next()
                .and_then(|l| serde_json::from_str(l).ok()),
            Err(source) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(SyncError::Read {
                    what: self.what,
                    source,
                });
            }
        };
        match report {
            Some(Report::Ready(true)) => Ok((self.child, None)),
            Some(Report::Pid(pid)) if pid > 0 => Ok((self.child, Some(pid))),
            Some(Report::Error(message)) => {
                let _ = self.child.wait();
                Err(SyncError::Failed(message))
            }
            _ => {
                let status = match self.child.wait() {
                    Ok(s) => s.to_string(),
                    Err(e) => e.to_string(),
                };
                Err(SyncError::Died {
                    what: self.what,
                    status,
                })
            }
        }
    }
}

/// The child's end, taken from [`SYNC_FD`] when [`CHILD_ENV`] says this
/// process is a child (and removed from the environment, so that nothing
/// it starts believes the same).
#[derive(Debug)]
pub struct Notifier {
    pipe: Option<File>,
}

impl Notifier {
    /// `Some(role)` with the notifier when this process is a child.
    pub fn take() -> Option<(String, Self)> {
        let role = std::env::var(CHILD_ENV).ok()?;
        std::env::remove_var(CHILD_ENV);
        // SAFETY: the parent set up SYNC_FD for us (see `spawn`); this is
        // the only place that takes ownership of it, once.
        let pipe = unsafe { File::from_raw_fd(SYNC_FD) };
        set_cloexec(&pipe);
        Some((role, Self { pipe: Some(pipe) }))
    }

    /// A notifier writing to `pipe` (tests).
    pub fn from_file(pipe: File) -> Self {
        Self { pipe: Some(pipe) }
    }

    fn send(&mut self, report: &Report) {
        if let Some(mut pipe) = self.pipe.take() {
            if let Ok(mut line) = serde_json::to_string(report) {
                line.push('\n');
                // The parent may be gone; nobody is left to tell then.
                let _ = pipe.write_all(line.as_bytes());
            }
        }
    }

    /// Reports success and closes the pipe.
    pub fn ready(&mut self) {
        self.send(&Report::Ready(true));
    }

    /// Reports success with the pid the caller is to report (the
    /// container's stand-in) and closes the pipe.
    pub fn ready_with_pid(&mut self, pid: i32) {
        self.send(&Report::Pid(pid));
    }

    /// Reports a failure and closes the pipe (no-op after [`Self::ready`]).
    pub fn fail(&mut self, message: &str) {
        self.send(&Report::Error(message.to_owned()));
    }

    pub fn is_pending(&self) -> bool {
        self.pipe.is_some()
    }
}

fn set_cloexec(f: &File) {
    if let Ok(flags) = fcntl(f, FcntlArg::F_GETFD) {
        let flags = FdFlag::from_bits_retain(flags) | FdFlag::FD_CLOEXEC;
        let _ = fcntl(f, FcntlArg::F_SETFD(flags));
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(OFlag::O_CLOEXEC)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Result<Child, SyncError> {
        let args = vec!["-c".to_string(), script.to_string()];
        spawn(Path::new("/bin/sh"), &args, "test", ChildStdio::Inherit)?
            .wait_ready()
            .map(|(child, _)| child)
    }

    #[test]
    fn a_ready_child_keeps_running_and_sees_its_role() {
        let mut child =
            sh(r#"[ "$_HULL_CHILD" = test ] && echo '{"ready":true}' >&3 && exec 3>&- && exit 7"#)
                .unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(7));
    }

    #[test]
    fn a_ready_child_may_name_the_pid_to_report() {
        let args = vec!["-c".to_string(), r#"echo '{"pid":42}' >&3"#.to_string()];
        let pending = spawn(Path::new("/bin/sh"), &args, "test", ChildStdio::Inherit).unwrap();
        let (mut child, pid) = pending.wait_ready().unwrap();
        assert_eq!(pid, Some(42));
        child.wait().unwrap();
    }

    #[test]
    fn errors_and_early_deaths_are_reported() {
        let e = sh(r#"echo '{"error":"no rootfs"}' >&3"#).unwrap_err();
        assert_eq!(e.to_string(), "no rootfs");
        let e = sh("exit 3").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the test process exited before it was ready (exit status: 3)"
        );
        let e = sh(r#"echo garbage >&3"#).unwrap_err();
        assert!(matches!(e, SyncError::Died { .. }), "{e}");
    }

    #[test]
    fn the_notifier_writes_one_report() {
        let (r, w) = pipe().unwrap();
        let mut n = Notifier::from_file(File::from(w));
        assert!(n.is_pending());
        n.fail("boom");
        n.ready();
        assert!(!n.is_pending());
        let mut text = String::new();
        File::from(r).read_to_string(&mut text).unwrap();
        assert_eq!(text, "{\"error\":\"boom\"}\n");
    }
}
