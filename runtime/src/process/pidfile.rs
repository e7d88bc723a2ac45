//! `--pid-file`: the pid, written atomically (temp file + rename) like runc.

use std::io;
use std::path::{Path, PathBuf};

/// Writes `pid` to `path` (relative paths are taken from the current
/// directory).
pub fn write(path: &Path, pid: i32) -> io::Result<()> {
    let path = std::path::absolute(path)?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp: PathBuf = dir.join(format!(".{name}.{}", std::process::id()));
    std::fs::write(&tmp, pid.to_string())?;
    std::fs::rename(&tmp, &path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_the_pid_and_replaces_an_old_file() {
        let dir = crate::testutil::TempDir::new("pidfile");
        let p = dir.path().join("x.pid");
        std::fs::write(&p, "old").unwrap();
        super::write(&p, 4242).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "4242");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(super::write(&dir.path().join("no/such/dir/x"), 1).is_err());
    }
}
