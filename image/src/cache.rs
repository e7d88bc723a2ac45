//! The layer cache: one directory per layer under `root/sha256/<hex>/`, keyed by the layer's
//! compressed digest, unpacked in `root/tmp/` and renamed into place only once verified.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use oci_spec::image::Descriptor;

use crate::blob::sha256_hex;
use crate::unpack::unpack_layer;
use crate::{Image, ImageError, Layout};

/// In each temporary dir: a file flock()ed while the unpack runs, so a cleaner can tell a
/// crashed unpack's leftovers from a running one.
const LOCK_FILE: &str = "lock";
/// The lock file before it is locked: cleaners never look at it.
const LOCK_FILE_NEW: &str = "lock.new";
/// Where the layer is unpacked inside its temporary dir.
const ROOTFS_DIR: &str = "rootfs";
/// Mode of a layer's root dir when its tar has no `./` entry.
const LAYER_ROOT_MODE: u32 = 0o755;

/// Unpacked layers, shared by every image that has them.
#[derive(Debug, Clone)]
pub struct LayerCache {
    root: PathBuf,
}

impl LayerCache {
    /// A cache rooted at `root` (created on first unpack).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the layer `desc` is (or will be) unpacked: `root/sha256/<hex>`.
    pub fn layer_dir(&self, desc: &Descriptor) -> Result<PathBuf, ImageError> {
        Ok(self.root.join("sha256").join(sha256_hex(desc.digest())?))
    }

    /// One directory per layer of `image`, lowest first, unpacking the layers not yet cached.
    /// For overlayfs, `lowerdir` lists them the other way round (topmost first).
    pub fn unpack(&self, layout: &Layout, image: &Image) -> Result<Vec<PathBuf>, ImageError> {
        // Leftovers of crashed unpacks: best effort, never fatal.
        let _ = self.clean_tmp();
        image
            .layers()
            .iter()
            .map(|desc| self.unpack_one(layout, desc))
            .collect()
    }

    fn unpack_one(&self, layout: &Layout, desc: &Descriptor) -> Result<PathBuf, ImageError> {
        let final_dir = self.layer_dir(desc)?;
        if is_dir(&final_dir) {
            return Ok(final_dir);
        }
        let tmp_root = self.root.join("tmp");
        for dir in [&tmp_root, &self.root.join("sha256")] {
            fs::create_dir_all(dir).map_err(|e| cache_err(dir, e))?;
        }
        let tmp = tempfile::Builder::new()
            .prefix("layer-")
            .tempdir_in(&tmp_root)
            .map_err(|e| cache_err(&tmp_root, e))?;
        let _lock = lock_tmp(tmp.path())?;
        let rootfs = tmp.path().join(ROOTFS_DIR);
        fs::create_dir(&rootfs).map_err(|e| cache_err(&rootfs, e))?;
        // Whatever our umask: a layer without a `./` entry has the usual root mode.
        fs::set_permissions(&rootfs, fs::Permissions::from_mode(LAYER_ROOT_MODE))
            .map_err(|e| cache_err(&rootfs, e))?;
        unpack_layer(layout.dir(), desc, &rootfs)?;
        match fs::rename(&rootfs, &final_dir) {
            Ok(()) => Ok(final_dir),
            // Someone else unpacked the same layer first: theirs is as good; ours is dropped
            // with `tmp`.
            Err(e) if is_dir(&final_dir) && is_exists_error(&e) => Ok(final_dir),
            Err(e) => Err(cache_err(&final_dir, e)),
        }
    }

    /// Removes temporary dirs left by crashed unpacks (those whose lock nobody holds); returns
    /// how many it removed.
    pub fn clean_tmp(&self) -> Result<usize, ImageError> {
        let tmp_root = self.root.join("tmp");
        let entries = match fs::read_dir(&tmp_root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(cache_err(&tmp_root, e)),
        };
        let mut removed = 0;
        for entry in entries {
            let dir = entry.map_err(|e| cache_err(&tmp_root, e))?.path();
            // No lock file yet: just created by a running unpack, leave it.
            let Ok(file) = File::open(dir.join(LOCK_FILE)) else {
                continue;
            };
            if let Ok(_held) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                fs::remove_dir_all(&dir).map_err(|e| cache_err(&dir, e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Creates the temporary dir's lock file already locked (locked under another name, then
/// renamed), so a cleaner never sees it unlocked while this unpack runs.
fn lock_tmp(tmp: &Path) -> Result<Flock<File>, ImageError> {
    let new = tmp.join(LOCK_FILE_NEW);
    let file = File::create(&new).map_err(|e| cache_err(&new, e))?;
    let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
        .map_err(|(_, errno)| cache_err(&new, errno.into()))?;
    let path = tmp.join(LOCK_FILE);
    fs::rename(&new, &path).map_err(|e| cache_err(&path, e))?;
    Ok(lock)
}

fn is_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

fn is_exists_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::ENOTEMPTY) | Some(Errno::EEXIST)
    )
}

fn cache_err(path: &Path, source: io::Error) -> ImageError {
    ImageError::Cache {
        path: path.to_path_buf(),
        source,
    }
}
