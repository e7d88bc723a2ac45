//! Entering the network namespace the caller prepared (CNI puts a veth
//! there): the spec's `linux.namespaces` entry of type `network` with a
//! `path` ([`crate::bundle::spec::Spec::network_namespace_path`]).
//!
//! Network namespaces are per thread: [`enter_netns`] moves the calling
//! thread only. Threads started afterwards inherit it, so the sandbox calls
//! it before it starts the VMM's threads (or from the thread that creates
//! the tap device).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;

nix::ioctl_none_bad!(ns_get_nstype, libc::NS_GET_NSTYPE);

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("cannot open network namespace {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{path} is not a namespace file ({source})")]
    NotNamespace { path: PathBuf, source: io::Error },
    #[error("{path} is a {kind} namespace, not a network namespace")]
    WrongType { path: PathBuf, kind: &'static str },
    #[error("cannot enter network namespace {path}: {source}")]
    Setns { path: PathBuf, source: io::Error },
}

/// The name of a namespace type (`CLONE_NEW*` value), for messages.
fn type_name(nstype: i32) -> &'static str {
    match nstype {
        libc::CLONE_NEWNET => "network",
        libc::CLONE_NEWNS => "mount",
        libc::CLONE_NEWPID => "pid",
        libc::CLONE_NEWUTS => "uts",
        libc::CLONE_NEWIPC => "ipc",
        libc::CLONE_NEWUSER => "user",
        libc::CLONE_NEWCGROUP => "cgroup",
        libc::CLONE_NEWTIME => "time",
        _ => "unknown",
    }
}

/// Opens `path` and checks that it is a network namespace.
pub fn open_netns(path: &Path) -> Result<File, NetnsError> {
    let file = File::open(path).map_err(|source| NetnsError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    // SAFETY: NS_GET_NSTYPE takes no argument and only returns a value; the
    // fd is valid for the duration of the call.
    let nstype =
        unsafe { ns_get_nstype(file.as_raw_fd()) }.map_err(|errno| NetnsError::NotNamespace {
            path: path.to_path_buf(),
            source: errno.into(),
        })?;
    if nstype != libc::CLONE_NEWNET {
        return Err(NetnsError::WrongType {
            path: path.to_path_buf(),
            kind: type_name(nstype),
        });
    }
    Ok(file)
}

/// Moves the calling thread into the network namespace at `path` (a
/// `/proc/<pid>/ns/net` file or a bind mount of one).
pub fn enter_netns(path: &Path) -> Result<(), NetnsError> {
    let file = open_netns(path)?;
    nix::sched::setns(&file, CloneFlags::CLONE_NEWNET).map_err(|errno| NetnsError::Setns {
        path: path.to_path_buf(),
        source: errno.into(),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::sync::mpsc;

    use super::*;
    use crate::testutil::TempDir;

    fn inode(path: &str) -> u64 {
        std::fs::metadata(path).unwrap().ino()
    }

    /// A thread that unshares a new network namespace and holds it until
    /// dropped; `path` names it (through the thread's /proc entry).
    struct NetnsThread {
        path: PathBuf,
        stop: mpsc::Sender<()>,
        handle: Option<std::thread::JoinHandle<()>>,
    }

    impl NetnsThread {
        fn start() -> Option<Self> {
            let (ready_tx, ready_rx) = mpsc::channel();
            let (stop, stop_rx) = mpsc::channel::<()>();
            let handle = std::thread::spawn(move || {
                // Only affects this thread.
                let ok = nix::sched::unshare(CloneFlags::CLONE_NEWNET).is_ok();
                let tid = nix::unistd::gettid();
                let _ = ready_tx.send(ok.then_some(tid));
                let _ = stop_rx.recv();
            });
            let tid = ready_rx.recv().ok().flatten()?;
            let path = PathBuf::from(format!("/proc/{}/task/{tid}/ns/net", std::process::id()));
            Some(Self {
                path,
                stop,
                handle: Some(handle),
            })
        }
    }

    impl Drop for NetnsThread {
        fn drop(&mut self) {
            let _ = self.stop.send(());
            if let Some(h) = self.handle.take() {
                let _ = h.join();
            }
        }
    }

    #[test]
    fn enters_a_network_namespace_on_this_thread_only() {
        let Some(ns) = NetnsThread::start() else {
            println!("note: cannot unshare a network namespace (not root?), skipping");
            return;
        };
        let target = std::fs::metadata(&ns.path).unwrap().ino();
        let before = inode("/proc/thread-self/ns/net");
        assert_ne!(target, before);
        let path = ns.path.clone();
        let entered = std::thread::spawn(move || {
            enter_netns(&path).map(|()| inode("/proc/thread-self/ns/net"))
        })
        .join()
        .unwrap()
        .unwrap();
        assert_eq!(entered, target);
        assert_eq!(inode("/proc/thread-self/ns/net"), before);
    }

    #[test]
    fn other_files_are_refused_clearly() {
        let tmp = TempDir::new("netns");
        let file = tmp.path().join("plain");
        std::fs::write(&file, "").unwrap();
        let e = enter_netns(&file).unwrap_err();
        assert!(matches!(e, NetnsError::NotNamespace { .. }), "{e}");
        assert!(e.to_string().contains("is not a namespace file"), "{e}");

        let e = enter_netns(Path::new("/proc/self/ns/uts")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/proc/self/ns/uts is a uts namespace, not a network namespace"
        );

        let e = enter_netns(&tmp.path().join("missing")).unwrap_err();
        assert!(matches!(e, NetnsError::Open { .. }), "{e}");
    }
}
