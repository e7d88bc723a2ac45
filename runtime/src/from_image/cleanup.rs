//! Who removes a run: a process forked before the run touches any
//! namespace. A foreground run is the sandbox itself, whose thread ends in
//! the container's network namespace and a private mount namespace: CNI's
//! `DEL` from there would run iptables in the wrong namespace, and its
//! unmounts would not reach the host. The cleaner keeps the runtime's own
//! namespaces, waits until the run ends (its pipe closes, also when the run
//! is killed) and then removes it, unless told to keep it (`-d`).

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};

/// The byte that keeps the run (a detached one, removed by `hull delete`).
const KEEP: u8 = b'k';

/// The forked cleaner of one run.
#[derive(Debug)]
pub struct Cleaner {
    pipe: Option<OwnedFd>,
    pid: Pid,
}

/// Whether this process has one thread (forking then is safe).
fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|d| d.count() == 1)
}

impl Cleaner {
    /// Forks the cleaner of run `id` at `run_dir`. Call while the process
    /// is single-threaded and in the runtime's namespaces; `None` when it
    /// is not single-threaded (the caller cleans up itself).
    pub fn start(id: &str, run_dir: &Path) -> std::io::Result<Option<Self>> {
        if !single_threaded() {
            return Ok(None);
        }
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (id, dir): (String, PathBuf) = (id.into(), run_dir.into());
        // SAFETY: the process has a single thread (checked above), so the
        // child may run anything.
        match unsafe { nix::unistd::fork() }? {
            ForkResult::Parent { child } => {
                drop(read);
                Ok(Some(Self {
                    pipe: Some(write),
                    pid: child,
                }))
            }
            ForkResult::Child => {
                drop(write);
                let mut byte = [0u8; 1];
                let kept =
                    matches!(std::fs::File::from(read).read(&mut byte), Ok(1) if byte[0] == KEEP);
                let code = match kept {
                    true => 0,
                    false => match super::remove_run(&id, &dir) {
                        Ok(()) => 0,
                        Err(e) => {
                            eprintln!("hull: warning: cannot remove run {id}: {e}");
                            1
                        }
                    },
                };
                // SAFETY: ending the forked child without running the
                // parent's exit handlers.
                unsafe { libc::_exit(code) }
            }
        }
    }

    /// Ends the run: removed (or kept, with `keep`) by the time this
    /// returns.
    pub fn finish(mut self, keep: bool) {
        if let Some(pipe) = self.pipe.take() {
            let mut f = std::fs::File::from(pipe);
            if keep {
                let _ = f.write_all(&[KEEP]);
            }
        }
        let _ = waitpid(self.pid, None);
    }
}
