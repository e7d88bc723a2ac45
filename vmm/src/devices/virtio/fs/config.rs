//! What one share is: its tag, the host directory and whether it is read-only.

use std::path::{Path, PathBuf};

use super::{FsError, TAG_LEN};

/// One virtio-fs share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsConfig {
    /// The mount tag the guest names (`mount -t virtiofs <tag> <dir>`):
    /// 1 to 36 bytes, no NUL.
    pub tag: String,
    /// The host directory served as the root of the share.
    pub shared_dir: PathBuf,
    /// Refuse every request that would change the share.
    pub readonly: bool,
}

impl FsConfig {
    /// A validated share (see [`validate`](Self::validate)).
    pub fn new(
        tag: impl Into<String>,
        shared_dir: impl Into<PathBuf>,
        readonly: bool,
    ) -> Result<Self, FsError> {
        let config = Self {
            tag: tag.into(),
            shared_dir: shared_dir.into(),
            readonly,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the tag and that the shared directory exists and is a
    /// directory; returns the directory's canonical path (symlinks resolved,
    /// UTF-8, as the passthrough filesystem wants it).
    pub fn validate(&self) -> Result<PathBuf, FsError> {
        validate_tag(&self.tag)?;
        let dir = canonical_dir(&self.shared_dir)?;
        if dir.to_str().is_none() {
            return Err(FsError::NonUtf8Path(dir));
        }
        Ok(dir)
    }

    /// The config space tag field: the tag, NUL-padded to 36 bytes.
    pub fn tag_bytes(&self) -> [u8; TAG_LEN] {
        let mut out = [0u8; TAG_LEN];
        let tag = self.tag.as_bytes();
        let n = tag.len().min(TAG_LEN);
        out[..n].copy_from_slice(&tag[..n]);
        out
    }
}

fn validate_tag(tag: &str) -> Result<(), FsError> {
    if tag.is_empty() || tag.len() > TAG_LEN || tag.contains('\0') {
        return Err(FsError::InvalidTag(tag.into()));
    }
    Ok(())
}

fn canonical_dir(path: &Path) -> Result<PathBuf, FsError> {
    let shared = |source| FsError::SharedDir {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.canonicalize().map_err(shared)?;
    let meta = std::fs::metadata(&dir).map_err(shared)?;
    if !meta.is_dir() {
        return Err(FsError::NotADirectory(path.to_path_buf()));
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hull-fs-cfg-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn tag_must_be_1_to_36_bytes_without_nul() {
        let dir = tempdir("tag");
        assert!(FsConfig::new("rootfs", &dir, false).is_ok());
        assert!(FsConfig::new("a".repeat(36), &dir, false).is_ok());
        for bad in [
            String::new(),
            "a".repeat(37),
            "ro\0ot".into(),
            "é".repeat(19),
        ] {
            assert!(
                matches!(
                    FsConfig::new(bad.clone(), &dir, false),
                    Err(FsError::InvalidTag(_))
                ),
                "{bad:?}"
            );
        }
        let cfg = FsConfig::new("rootfs", &dir, true).unwrap();
        let bytes = cfg.tag_bytes();
        assert_eq!(&bytes[..6], b"rootfs");
        assert!(bytes[6..].iter().all(|&b| b == 0));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn shared_dir_must_exist_and_be_a_directory() {
        let dir = tempdir("dir");
        let missing = dir.join("missing");
        assert!(matches!(
            FsConfig::new("t", &missing, false),
            Err(FsError::SharedDir { .. })
        ));
        let file = dir.join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            FsConfig::new("t", &file, false),
            Err(FsError::NotADirectory(_))
        ));
        // A symlink to a directory is resolved to the directory itself.
        let link = dir.join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let cfg = FsConfig::new("t", &link, false).unwrap();
        assert_eq!(cfg.validate().unwrap(), dir.canonicalize().unwrap());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
