//! Unpacking layers into the cache: contents, reuse, overlay whiteouts, hostile layers.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;

use crate::testutil::*;
use crate::{available_or_skip, ImageError, LayerCache, Layout};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Resolves the `latest` image of `layout` and unpacks it into its cache.
fn unpack(layout: &TestLayout) -> Result<Vec<PathBuf>, ImageError> {
    let opened = Layout::open(&layout.dir)?;
    let image = opened.resolve(Some("latest"))?;
    LayerCache::new(layout.cache_root()).unpack(&opened, &image)
}

fn two_layers() -> [(&'static str, Vec<u8>); 2] {
    let base = tar(&[
        Entry::Dir("bin", 0o755),
        Entry::File("bin/sh", b"#!shell", 0o4755),
        Entry::Symlink("bin/ash", "sh"),
        Entry::Hardlink("bin/dash", "bin/sh"),
        Entry::Dir("etc", 0o750),
        Entry::File("etc/hostname", b"base", 0o600),
    ]);
    let top = tar(&[Entry::File("etc/hostname", b"top", 0o644)]);
    [(GZIP_LAYER, gzip(&base)), (GZIP_LAYER, gzip(&top))]
}

#[test]
fn two_gzip_layers_unpack_with_modes_links_and_times() {
    let (layout, _) = TestLayout::single(&two_layers());
    let dirs = unpack(&layout).unwrap();
    assert_eq!(dirs.len(), 2);
    let (base, top) = (&dirs[0], &dirs[1]);
    assert!(base.starts_with(layout.cache_root().join("sha256")));
    let root_mode = fs::metadata(base).unwrap().permissions().mode();
    assert_eq!(
        root_mode & 0o7777,
        0o755,
        "no ./ entry: the usual root mode"
    );
    assert_eq!(fs::read(base.join("bin/sh")).unwrap(), b"#!shell");
    let sh = fs::metadata(base.join("bin/sh")).unwrap();
    assert_eq!(sh.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(sh.mtime() as u64, TEST_MTIME);
    assert_eq!(
        fs::read_link(base.join("bin/ash")).unwrap(),
        PathBuf::from("sh")
    );
    assert_eq!(fs::metadata(base.join("bin/dash")).unwrap().ino(), sh.ino());
    let etc = fs::metadata(base.join("etc")).unwrap();
    assert_eq!(etc.permissions().mode() & 0o7777, 0o750);
    assert_eq!(
        etc.mtime() as u64,
        TEST_MTIME,
        "dir mtimes are set after their children"
    );
    assert_eq!(fs::read(base.join("etc/hostname")).unwrap(), b"base");
    assert_eq!(fs::read(top.join("etc/hostname")).unwrap(), b"top");
    if is_root() {
        assert_eq!((sh.uid() as u64, sh.gid() as u64), (TEST_UID, TEST_GID));
    }
    assert_eq!(
        crate::lowerdir_option(&dirs),
        format!("{}:{}", top.display(), base.display())
    );
    assert!(is_empty_dir(&layout.cache_root().join("tmp")));
}

#[test]
fn zstd_and_plain_tar_layers_unpack() {
    let z = tar(&[Entry::File("z", b"zstd", 0o644)]);
    let p = tar(&[Entry::File("p", b"plain", 0o640)]);
    let (layout, _) = TestLayout::single(&[(ZSTD_LAYER, zstd(&z)), (TAR_LAYER, p)]);
    let dirs = unpack(&layout).unwrap();
    assert_eq!(fs::read(dirs[0].join("z")).unwrap(), b"zstd");
    assert_eq!(fs::read(dirs[1].join("p")).unwrap(), b"plain");
}

#[test]
fn second_unpack_reuses_layer_dirs_without_reading_blobs() {
    let (layout, _) = TestLayout::single(&two_layers());
    let first = unpack(&layout).unwrap();
    let inode = fs::metadata(&first[0]).unwrap().ino();
    let opened = Layout::open(&layout.dir).unwrap();
    let image = opened.resolve(None).unwrap();
    for layer in image.layers() {
        fs::remove_file(layout.blob_path(layer.digest().as_ref())).unwrap();
    }
    let again = LayerCache::new(layout.cache_root())
        .unpack(&opened, &image)
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(fs::metadata(&again[0]).unwrap().ino(), inode);
}

#[test]
fn whiteouts_and_opaque_dirs_become_overlay_forms() {
    const TEST: &str = "whiteouts_and_opaque_dirs_become_overlay_forms";
    if !available_or_skip(is_root(), TEST, "mknod and trusted.* xattrs need root") {
        return;
    }
    let top = tar(&[
        Entry::File("etc/.wh.hostname", b"", 0o644),
        Entry::Dir("var", 0o755),
        Entry::File("var/.wh..wh..opq", b"", 0o644),
        Entry::File("var/new", b"n", 0o644),
    ]);
    let (layout, _) = TestLayout::single(&[(GZIP_LAYER, gzip(&top))]);
    let dirs = unpack(&layout).unwrap();
    let wh = fs::symlink_metadata(dirs[0].join("etc/hostname")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert!(!dirs[0].join("etc/.wh.hostname").exists());
    let opaque = xattr::get(dirs[0].join("var"), "trusted.overlay.opaque").unwrap();
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
    assert!(!dirs[0].join("var/.wh..wh..opq").exists());
    assert_eq!(fs::read(dirs[0].join("var/new")).unwrap(), b"n");
}

#[test]
fn corrupt_layer_is_never_cached() {
    let (layout, _) = TestLayout::single(&two_layers());
    let opened = Layout::open(&layout.dir).unwrap();
    let image = opened.resolve(None).unwrap();
    let layer = &image.layers()[1];
    // Same size, one byte flipped in the middle of the compressed stream.
    let path = layout.blob_path(layer.digest().as_ref());
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let cache = LayerCache::new(layout.cache_root());
    let err = cache.unpack(&opened, &image).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(!cache.layer_dir(layer).unwrap().exists());
    assert!(cache.layer_dir(&image.layers()[0]).unwrap().is_dir());
    assert!(is_empty_dir(&layout.cache_root().join("tmp")));

    // Longer than its descriptor: a size mismatch, and still nothing cached.
    bytes.extend_from_slice(&[0; 1024]);
    fs::write(&path, &bytes).unwrap();
    let err = cache.unpack(&opened, &image).unwrap_err();
    assert!(matches!(err, ImageError::SizeMismatch { .. }), "{err}");
    assert!(!cache.layer_dir(layer).unwrap().exists());
    assert!(is_empty_dir(&layout.cache_root().join("tmp")));
}

#[test]
fn hostile_paths_are_refused() {
    for name in ["../x", "/abs", "a/../../x"] {
        let bad = tar(&[Entry::File("ok", b"1", 0o644), Entry::RawName(name)]);
        let (layout, _) = TestLayout::single(&[(TAR_LAYER, bad)]);
        let err = unpack(&layout).unwrap_err();
        assert!(
            matches!(err, ImageError::UnsafePath { .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(name), "{err}");
        assert!(!layout.dir.with_file_name("x").exists());
        assert!(is_empty_dir(&layout.cache_root().join("sha256")));
        assert!(is_empty_dir(&layout.cache_root().join("tmp")));
    }
}

#[test]
fn symlink_and_hardlink_escapes_are_refused() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap();
    let via_symlink = tar(&[
        Entry::Symlink("esc", target),
        Entry::File("esc/pwned", b"x", 0o644),
    ]);
    let via_hardlink = tar(&[Entry::Hardlink("h", "../../etc/passwd")]);
    for bad in [via_symlink, via_hardlink] {
        let (layout, _) = TestLayout::single(&[(TAR_LAYER, bad)]);
        let err = unpack(&layout).unwrap_err();
        eprintln!("refused: {err}");
        assert!(
            matches!(
                err,
                ImageError::UnsafePath { .. } | ImageError::Unpack { .. }
            ),
            "{err}"
        );
        assert!(is_empty_dir(outside.path()));
        assert!(is_empty_dir(&layout.cache_root().join("sha256")));
    }
}

#[test]
fn concurrent_unpacks_of_one_image_agree() {
    let (layout, _) = TestLayout::single(&two_layers());
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| unpack(&layout))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        fs::read(results[0][1].join("etc/hostname")).unwrap(),
        b"top"
    );
    assert!(is_empty_dir(&layout.cache_root().join("tmp")));
}

#[test]
fn clean_tmp_removes_only_unlocked_leftovers() {
    let (layout, _) = TestLayout::single(&two_layers());
    let tmp = layout.cache_root().join("tmp");
    let crashed = tmp.join("layer-crashed");
    fs::create_dir_all(crashed.join("rootfs/etc")).unwrap();
    fs::write(crashed.join("lock"), b"").unwrap();
    let running = tmp.join("layer-running");
    fs::create_dir_all(&running).unwrap();
    let lock = fs::File::create(running.join("lock")).unwrap();
    let held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let cache = LayerCache::new(layout.cache_root());
    assert_eq!(cache.clean_tmp().unwrap(), 1);
    assert!(!crashed.exists());
    assert!(running.exists());
    drop(held);
    // unpack cleans too, and a leftover is never taken for a layer.
    unpack(&layout).unwrap();
    assert!(is_empty_dir(&tmp));
}

/// Peak resident set size of this process, in KiB.
fn max_rss_kib() -> i64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).unwrap().max_rss()
}

#[test]
fn unpack_streams_a_large_layer_in_bounded_memory() {
    const FILE_BYTES: u64 = 48 << 20;
    const GROWTH_LIMIT_KIB: i64 = 16 << 10;
    // Built streaming too: only the compressed layer (tens of KiB) is ever in memory.
    let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(enc);
    let mut h = tar::Header::new_gnu();
    h.set_size(FILE_BYTES);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(TEST_MTIME);
    let zeros = std::io::Read::take(std::io::repeat(0), FILE_BYTES);
    builder.append_data(&mut h, "big", zeros).unwrap();
    let layer = builder.into_inner().unwrap().finish().unwrap();
    let (layout, _) = TestLayout::single(&[(GZIP_LAYER, layer)]);
    let before = max_rss_kib();
    let dirs = unpack(&layout).unwrap();
    let grown = max_rss_kib() - before;
    assert_eq!(fs::metadata(dirs[0].join("big")).unwrap().len(), FILE_BYTES);
    assert!(grown < GROWTH_LIMIT_KIB, "peak RSS grew by {grown} KiB");
}
