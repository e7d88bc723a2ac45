//! What a guest can reach through a share, driven through the
//! [`FileSystem`] trait as the FUSE server would: `..` at the root, symlinks,
//! names holding `/`, special files, file handles, and read-only shares.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use fuse_backend_rs::abi::fuse_abi::{CreateIn, ROOT_ID};
use fuse_backend_rs::api::filesystem::{Context, FileSystem, SetattrValid};

use super::filesystem::passthrough_config;
use super::tests::tempdir;
use super::{FsConfig, ShareFs};

/// `outer/` holds a `marker` file outside the share and the share `outer/share/`.
fn setup(name: &str, readonly: bool) -> (PathBuf, PathBuf, ShareFs) {
    let outer = tempdir(name);
    std::fs::write(outer.join("marker"), b"outside").unwrap();
    let share = outer.join("share");
    std::fs::create_dir(&share).unwrap();
    std::fs::create_dir(share.join("sub")).unwrap();
    std::fs::write(share.join("file"), b"inside").unwrap();
    std::os::unix::fs::symlink("/etc", share.join("etc")).unwrap();
    std::os::unix::fs::symlink("..", share.join("up")).unwrap();
    let fs = ShareFs::new(&FsConfig::new("t", &share, readonly).unwrap()).unwrap();
    (outer, share, fs)
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn errno<T>(r: io::Result<T>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

fn ino(path: &Path) -> u64 {
    std::fs::symlink_metadata(path).unwrap().ino()
}

#[test]
fn dotdot_at_the_root_is_the_root() {
    let (outer, share, fs) = setup("esc-dotdot", false);
    let ctx = Context::default();
    let up = fs.lookup(&ctx, ROOT_ID, &c("..")).unwrap();
    assert_eq!(up.inode, ROOT_ID);
    assert_eq!(up.attr.st_ino, ino(&share));
    assert_eq!(fs.lookup(&ctx, ROOT_ID, &c(".")).unwrap().inode, ROOT_ID);
    assert_eq!(
        errno(fs.lookup(&ctx, up.inode, &c("marker"))),
        Some(libc::ENOENT),
        "the share's parent is not reachable"
    );
    let sub = fs.lookup(&ctx, ROOT_ID, &c("sub")).unwrap();
    let back = fs.lookup(&ctx, sub.inode, &c("..")).unwrap();
    assert_eq!(back.inode, ROOT_ID);
    let again = fs.lookup(&ctx, back.inode, &c("..")).unwrap();
    assert_eq!(again.inode, ROOT_ID);
    std::fs::remove_dir_all(outer).unwrap();
}

#[test]
fn symlinks_are_returned_not_followed() {
    let (outer, _share, fs) = setup("esc-symlink", false);
    let ctx = Context::default();
    let etc = fs.lookup(&ctx, ROOT_ID, &c("etc")).unwrap();
    assert_eq!(etc.attr.st_mode & libc::S_IFMT, libc::S_IFLNK);
    assert_ne!(etc.attr.st_ino, ino(Path::new("/etc")));
    assert_eq!(fs.readlink(&ctx, etc.inode).unwrap(), b"/etc");
    assert!(fs.lookup(&ctx, etc.inode, &c("passwd")).is_err());
    assert!(fs.lookup(&ctx, etc.inode, &c("..")).is_err());
    assert!(fs.opendir(&ctx, etc.inode, 0).is_err());
    assert!(fs.open(&ctx, etc.inode, libc::O_RDONLY as u32, 0).is_err());
    let up = fs.lookup(&ctx, ROOT_ID, &c("up")).unwrap();
    assert_eq!(up.attr.st_mode & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!(fs.readlink(&ctx, up.inode).unwrap(), b"..");
    assert!(fs.lookup(&ctx, up.inode, &c("marker")).is_err());
    std::fs::remove_dir_all(outer).unwrap();
}

#[test]
fn names_holding_a_slash_or_dots_are_refused() {
    let (outer, share, fs) = setup("esc-slash", false);
    let ctx = Context::default();
    let einval = Some(libc::EINVAL);
    for name in ["sub/file", "../marker", "/etc", "etc/passwd"] {
        assert_eq!(errno(fs.lookup(&ctx, ROOT_ID, &c(name))), einval, "{name}");
    }
    let args = CreateIn {
        flags: (libc::O_CREAT | libc::O_RDWR) as u32,
        mode: 0o644,
        umask: 0,
        fuse_flags: 0,
    };
    for name in ["sub/new", "../escaped", "..", "."] {
        assert_eq!(
            errno(fs.create(&ctx, ROOT_ID, &c(name), args)),
            einval,
            "{name}"
        );
        assert_eq!(errno(fs.mkdir(&ctx, ROOT_ID, &c(name), 0o755, 0)), einval);
        assert_eq!(
            errno(fs.symlink(&ctx, &c("/etc"), ROOT_ID, &c(name))),
            einval
        );
    }
    let file = fs.lookup(&ctx, ROOT_ID, &c("file")).unwrap();
    assert_eq!(
        errno(fs.link(&ctx, file.inode, ROOT_ID, &c("../linked"))),
        einval
    );
    let renamed = fs.rename(&ctx, ROOT_ID, &c("file"), ROOT_ID, &c("../escaped"), 0);
    assert_eq!(errno(renamed), einval);
    assert!(!outer.join("escaped").exists() && !outer.join("linked").exists());
    assert!(share.join("file").exists());
    std::fs::remove_dir_all(outer).unwrap();
}

#[test]
fn inodes_are_fds_not_file_handles_and_special_files_are_not_opened() {
    let cfg = passthrough_config(Path::new("/srv"));
    assert!(!cfg.inode_file_handles, "open_by_handle_at must stay off");
    assert!(cfg.do_import, "do_import enables the name checks");
    assert!(!cfg.writeback && !cfg.xattr);
    assert_eq!(cfg.root_dir, "/srv");

    let (outer, share, fs) = setup("esc-fifo", false);
    let ctx = Context::default();
    let fifo = CString::new(share.join("fifo").as_os_str().as_bytes()).unwrap();
    // SAFETY: `fifo` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let entry = fs.lookup(&ctx, ROOT_ID, &c("fifo")).unwrap();
    // Opening a FIFO would block the device thread; it is refused instead.
    assert!(fs
        .open(&ctx, entry.inode, libc::O_RDONLY as u32, 0)
        .is_err());
    std::fs::remove_dir_all(outer).unwrap();
}

#[test]
fn readonly_share_refuses_every_change() {
    let (outer, share, fs) = setup("esc-ro", true);
    let ctx = Context::default();
    let erofs = Some(libc::EROFS);
    let file = fs.lookup(&ctx, ROOT_ID, &c("file")).unwrap();
    let sub = fs.lookup(&ctx, ROOT_ID, &c("sub")).unwrap();
    let args = CreateIn {
        flags: (libc::O_CREAT | libc::O_WRONLY) as u32,
        mode: 0o644,
        umask: 0,
        fuse_flags: 0,
    };
    assert_eq!(errno(fs.create(&ctx, ROOT_ID, &c("new"), args)), erofs);
    assert_eq!(errno(fs.mkdir(&ctx, ROOT_ID, &c("d"), 0o755, 0)), erofs);
    let fifo = libc::S_IFIFO | 0o644;
    assert_eq!(errno(fs.mknod(&ctx, ROOT_ID, &c("p"), fifo, 0, 0)), erofs);
    assert_eq!(errno(fs.symlink(&ctx, &c("x"), ROOT_ID, &c("l"))), erofs);
    assert_eq!(errno(fs.link(&ctx, file.inode, ROOT_ID, &c("h"))), erofs);
    assert_eq!(errno(fs.unlink(&ctx, ROOT_ID, &c("file"))), erofs);
    assert_eq!(errno(fs.rmdir(&ctx, ROOT_ID, &c("sub"))), erofs);
    assert_eq!(
        errno(fs.rename(&ctx, ROOT_ID, &c("file"), sub.inode, &c("f"), 0)),
        erofs
    );
    let (mut attr, _) = fs.getattr(&ctx, file.inode, None).unwrap();
    attr.st_size = 0;
    let truncate = fs.setattr(&ctx, file.inode, attr, None, SetattrValid::SIZE);
    assert_eq!(errno(truncate), erofs);
    assert_eq!(
        errno(fs.setxattr(&ctx, file.inode, &c("user.x"), b"1", 0)),
        erofs
    );
    assert_eq!(errno(fs.removexattr(&ctx, file.inode, &c("user.x"))), erofs);
    for flags in [
        libc::O_WRONLY,
        libc::O_RDWR,
        libc::O_TRUNC,
        libc::O_APPEND | 1,
    ] {
        assert_eq!(errno(fs.open(&ctx, file.inode, flags as u32, 0)), erofs);
    }
    assert_eq!(errno(fs.access(&ctx, file.inode, libc::W_OK as u32)), erofs);
    // Reading still works.
    assert!(fs.open(&ctx, file.inode, libc::O_RDONLY as u32, 0).is_ok());
    assert!(fs.access(&ctx, file.inode, libc::R_OK as u32).is_ok());
    let st = fs.statfs(&ctx, ROOT_ID).unwrap();
    assert_ne!(st.f_flag & libc::ST_RDONLY, 0);
    assert_eq!(std::fs::read(share.join("file")).unwrap(), b"inside");
    assert!(share.join("sub").is_dir() && !share.join("new").exists());
    std::fs::remove_dir_all(outer).unwrap();
}

#[test]
fn writable_share_delegates_changes() {
    let (outer, share, fs) = setup("esc-rw", false);
    let ctx = Context::default();
    let args = CreateIn {
        flags: (libc::O_CREAT | libc::O_WRONLY) as u32,
        mode: 0o640,
        umask: 0o022,
        fuse_flags: 0,
    };
    let (entry, handle, _, _) = fs.create(&ctx, ROOT_ID, &c("new"), args).unwrap();
    assert!(handle.is_some());
    assert_eq!(entry.attr.st_mode & 0o777, 0o640);
    assert!(share.join("new").is_file());
    fs.mkdir(&ctx, ROOT_ID, &c("d"), 0o777, 0o022).unwrap();
    let mode = std::fs::metadata(share.join("d")).unwrap().mode();
    assert_eq!(mode & 0o777, 0o755, "the guest's umask applies");
    fs.unlink(&ctx, ROOT_ID, &c("file")).unwrap();
    assert!(!share.join("file").exists());
    std::fs::remove_dir_all(outer).unwrap();
}

#[test]
fn the_guest_cannot_make_device_nodes_on_the_host() {
    let (outer, share, fs) = setup("esc-dev", false);
    let ctx = Context::default();
    for kind in [libc::S_IFCHR, libc::S_IFBLK] {
        let made = fs.mknod(&ctx, ROOT_ID, &c("dev"), kind | 0o666, 0x0801, 0);
        assert_eq!(errno(made), Some(libc::EPERM));
        assert!(!share.join("dev").exists());
    }
    let fifo = fs.mknod(&ctx, ROOT_ID, &c("fifo"), libc::S_IFIFO | 0o644, 0, 0);
    assert!(fifo.is_ok(), "a FIFO is fine: {:?}", fifo.err());
    std::fs::remove_dir_all(outer).unwrap();
}
