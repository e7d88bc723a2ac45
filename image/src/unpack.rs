//! Streaming one layer blob into a directory: decompress, hash, and unpack each tar entry,
//! refusing entries that would land outside, and turning OCI whiteouts into overlayfs ones.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{makedev, mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use oci_spec::image::Descriptor;

use crate::blob::BlobReader;
use crate::media::{layer_compression, Compression};
use crate::ImageError;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";

/// Unpacks the layer `desc` of the layout at `layout_dir` into the existing, empty `dest`.
/// Errors if the blob is not exactly the one the descriptor names, even when the tar was
/// fine: a digest or size mismatch is reported in preference to an unpack error.
pub(crate) fn unpack_layer(
    layout_dir: &Path,
    desc: &Descriptor,
    dest: &Path,
) -> Result<(), ImageError> {
    let digest = desc.digest().to_string();
    let compression =
        layer_compression(desc.media_type()).ok_or_else(|| ImageError::UnknownMediaType {
            media_type: desc.media_type().to_string(),
            what: "layer",
            digest: digest.clone(),
        })?;
    let mut blob = BlobReader::open(layout_dir, desc)?;
    let unpacked = unpack_stream(&mut blob, compression, dest, &digest);
    blob.finish()?;
    unpacked
}

fn unpack_stream(
    blob: &mut BlobReader,
    compression: Compression,
    dest: &Path,
    digest: &str,
) -> Result<(), ImageError> {
    let stream_err = |source| ImageError::Unpack {
        digest: digest.to_string(),
        path: "(layer stream)".to_string(),
        source,
    };
    let decoder: Box<dyn Read + '_> = match compression {
        Compression::None => Box::new(blob),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(blob)),
        Compression::Zstd => Box::new(zstd::Decoder::new(blob).map_err(stream_err)?),
    };
    let mut archive = tar::Archive::new(decoder);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_preserve_ownerships(nix::unistd::geteuid().is_root());
    archive.set_overwrite(true);
    // Applied by us, without the overlayfs ones an image could smuggle in.
    archive.set_unpack_xattrs(false);
    unpack_entries(&mut archive, dest, digest)?;
    // Read the decompressed rest (tar padding, the gzip trailer and its CRC check).
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(stream_err)?;
    Ok(())
}

fn unpack_entries<R: Read>(
    archive: &mut tar::Archive<R>,
    dest: &Path,
    digest: &str,
) -> Result<(), ImageError> {
    let err = |path: &Path, source| ImageError::Unpack {
        digest: digest.to_string(),
        path: path.display().to_string(),
        source,
    };
    let mut dir_mtimes: Vec<(PathBuf, u64)> = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| err(Path::new("(archive)"), e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| err(Path::new("(archive)"), e))?;
        let raw = entry.path().map_err(|e| err(Path::new("(entry)"), e))?;
        let rel = safe_relative(&raw, digest)?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue; // archive-wide metadata (`git archive`), not a file
        }
        let name = rel.file_name().unwrap_or_default();
        let parent = rel.parent().unwrap_or(Path::new(""));
        if name == OPAQUE_MARKER {
            let dir = inside_dir(dest, parent, digest)?;
            xattr::set(&dir, OVERLAY_OPAQUE_XATTR, b"y").map_err(|e| err(&rel, e))?;
            continue;
        }
        if let Some(hidden) = name.to_str().and_then(|n| n.strip_prefix(WHITEOUT_PREFIX)) {
            if hidden.starts_with(".wh.") {
                continue; // other AUFS metadata (.wh..wh.plnk...): not content
            }
            if hidden.is_empty() || hidden == "." || hidden == ".." {
                return Err(unsafe_path(&rel, digest, "whiteout of nothing"));
            }
            let dir = inside_dir(dest, parent, digest)?;
            whiteout(&dir.join(hidden)).map_err(|e| err(&rel, e))?;
            continue;
        }
        if kind.is_hard_link() {
            let target = entry.link_name().map_err(|e| err(&rel, e))?;
            if let Some(target) = target {
                safe_relative(&target, digest)?;
            }
        }
        if rel.as_os_str().is_empty() {
            apply_root_mode(dest, &entry).map_err(|e| err(&rel, e))?;
            continue;
        }
        let xattrs = pax_xattrs(&mut entry).map_err(|e| err(&rel, e))?;
        let mtime = entry.header().mtime().unwrap_or(0);
        entry.unpack_in(dest).map_err(|e| err(&rel, e))?;
        for (key, value) in xattrs {
            xattr::set(dest.join(&rel), &key, &value).map_err(|e| err(&rel, e))?;
        }
        if kind.is_dir() {
            dir_mtimes.push((rel, mtime));
        }
    }
    // Directories last, deepest first: unpacking their children changed their mtimes.
    for (rel, mtime) in dir_mtimes.iter().rev() {
        let secs = i64::try_from(*mtime).unwrap_or(0);
        let time = TimeSpec::new(secs, 0);
        utimensat(
            nix::fcntl::AT_FDCWD,
            &dest.join(rel),
            &time,
            &time,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| err(rel, e.into()))?;
    }
    Ok(())
}

/// The entry's path as plain components; absolute paths and `..` are refused.
pub(crate) fn safe_relative(path: &Path, digest: &str) -> Result<PathBuf, ImageError> {
    let mut rel = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => rel.push(p),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_path(path, digest, "absolute path"))
            }
            Component::ParentDir => return Err(unsafe_path(path, digest, "`..` component")),
        }
    }
    Ok(rel)
}

fn unsafe_path(path: &Path, digest: &str, why: &'static str) -> ImageError {
    ImageError::UnsafePath {
        digest: digest.to_string(),
        path: path.display().to_string(),
        why,
    }
}

/// `dest/rel` as a directory (created if missing) whose every component is a real directory,
/// so it is inside `dest` (an earlier symlink entry could point anywhere).
fn inside_dir(dest: &Path, rel: &Path, digest: &str) -> Result<PathBuf, ImageError> {
    let io_err = |source| ImageError::Unpack {
        digest: digest.to_string(),
        path: rel.display().to_string(),
        source,
    };
    let root = dest.canonicalize().map_err(io_err)?;
    let mut at = root.clone();
    for part in rel.components() {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(unsafe_path(rel, digest, "whiteout under a non-directory")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&at).map_err(io_err)?;
            }
            Err(e) => return Err(io_err(e)),
        }
    }
    Ok(at)
}

/// An overlayfs whiteout: a character device 0:0 (needs CAP_MKNOD).
fn whiteout(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path)?,
        Ok(_) => fs::remove_file(path)?,
        Err(_) => {}
    }
    mknod(path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))?;
    Ok(())
}

/// The layer's root entry (`./`): its mode (and owner when we may chown).
fn apply_root_mode<R: Read>(dest: &Path, entry: &tar::Entry<'_, R>) -> io::Result<()> {
    let header = entry.header();
    if let Ok(mode) = header.mode() {
        fs::set_permissions(dest, fs::Permissions::from_mode(mode & 0o7777))?;
    }
    if nix::unistd::geteuid().is_root() {
        let uid = u32::try_from(header.uid()?)
            .ok()
            .map(nix::unistd::Uid::from_raw);
        let gid = u32::try_from(header.gid()?)
            .ok()
            .map(nix::unistd::Gid::from_raw);
        nix::unistd::chown(dest, uid, gid)?;
    }
    Ok(())
}

/// The entry's PAX xattrs, less `trusted.overlay.*` (only whiteouts may make those).
fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let Some(exts) = entry.pax_extensions()? else {
        return Ok(out);
    };
    for ext in exts {
        let ext = ext?;
        let Ok(key) = ext.key() else { continue };
        if let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX) {
            if !name.starts_with("trusted.overlay.") {
                out.push((name.to_string(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}
