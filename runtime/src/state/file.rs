//! File primitives for state: an advisory `flock` on a lock file, and
//! atomic replacement (temporary file in the same directory, fsync, rename,
//! fsync of the directory) so a reader sees the old or the new contents,
//! never a part.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Shared (readers) or exclusive (writers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    Shared,
    Exclusive,
}

/// A held `flock`; released when dropped (the file is closed).
#[derive(Debug)]
pub struct FileLock {
    _lock: Flock<File>,
}

impl FileLock {
    /// Opens and locks `path`, waiting for conflicting holders. An
    /// exclusive lock creates the file if needed; a shared one never does
    /// (so a reader cannot leave a file behind in a directory being torn
    /// down), and a missing file is `NotFound`.
    pub fn acquire(path: &Path, kind: LockKind) -> io::Result<Self> {
        let exclusive = kind == LockKind::Exclusive;
        let mut file = OpenOptions::new()
            .read(true)
            .write(exclusive)
            .create(exclusive)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)?;
        let op = match kind {
            LockKind::Shared => FlockArg::LockShared,
            LockKind::Exclusive => FlockArg::LockExclusive,
        };
        loop {
            match Flock::lock(file, op) {
                Ok(lock) => return Ok(Self { _lock: lock }),
                Err((back, Errno::EINTR)) => file = back,
                Err((_, errno)) => return Err(errno.into()),
            }
        }
    }
}

/// Replaces `path` with `bytes` atomically (see the module docs).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temp_name(path);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `.<name>.tmp-<pid>-<n>` beside `path`: unique per process and call, so
/// writers that skip the lock still never share a temporary file.
fn temp_name(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn readers_never_see_a_partial_file() {
        let dir = TempDir::new("atomic");
        let path = dir.path().join("f.json");
        write_atomic(&path, b"[0]").unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (path, done) = (path.clone(), done.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !done.load(Ordering::Relaxed) {
                    let text = std::fs::read(&path).unwrap();
                    let v: Vec<u32> = serde_json::from_slice(&text).expect("a whole file");
                    assert!(v.iter().all(|&x| x == v[0]));
                    reads += 1;
                }
                reads
            })
        };
        for i in 1..300u32 {
            // Sizes vary from a few bytes to about 100 KiB.
            let v = vec![i; (i as usize * 97) % 20_000 + 1];
            write_atomic(&path, &serde_json::to_vec(&v).unwrap()).unwrap();
        }
        done.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = TempDir::new("atomic-fail");
        let path = dir.path().join("f");
        write_atomic(&path, b"old").unwrap();
        // Renaming over a directory fails.
        let blocked = dir.path().join("d");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(write_atomic(&blocked, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn exclusive_locks_exclude_each_other() {
        let dir = TempDir::new("lock");
        let path = dir.path().join("lock");
        let held = FileLock::acquire(&path, LockKind::Exclusive).unwrap();
        let got = Arc::new(AtomicBool::new(false));
        let t = {
            let (path, got) = (path.clone(), got.clone());
            std::thread::spawn(move || {
                let _l = FileLock::acquire(&path, LockKind::Shared).unwrap();
                got.store(true, Ordering::SeqCst);
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!got.load(Ordering::SeqCst), "shared lock taken while held");
        drop(held);
        t.join().unwrap();
        assert!(got.load(Ordering::SeqCst));
        let e = FileLock::acquire(&dir.path().join("no/such/lock"), LockKind::Exclusive);
        assert_eq!(e.unwrap_err().kind(), io::ErrorKind::NotFound);
        let e = FileLock::acquire(&dir.path().join("absent"), LockKind::Shared);
        assert_eq!(e.unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(!dir.path().join("absent").exists());
    }
}
