//! `linux.devices`: device nodes in the container's rootfs, as runc makes
//! them (libcontainer/rootfs_linux.go `createDevices`): parents created
//! 0755, the node made with the spec's type, numbers, mode (0666 when
//! absent, whatever the umask) and owner (root when absent), `/dev/ptmx`
//! left to the pty set-up, and, where mknod is refused (a user namespace),
//! the guest's node of the same path bound onto an empty file.
//!
//! Unlike runc, an existing file at a node's path is an error unless it is
//! already that very node (the runtime spec: "If a file already exists at
//! path that does not match the requested device, the runtime MUST generate
//! an error"); runc silently keeps whatever is there.
//!
//! Every path is resolved with openat2 `RESOLVE_IN_ROOT` from a descriptor
//! of the rootfs, so the image's symlinks and `..` stay inside it; a
//! symlink to a directory that does not exist is an error (not created).

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{FchmodatFlags, Mode, SFlag};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::DevicesError;
use device_filter::DEFAULT_FILE_MODE;

/// Permission bits a `fileMode` may carry (the type bits are ignored, as
/// runc does).
const PERMISSION_BITS: u32 = 0o7777;
const DIR_MODE: libc::mode_t = 0o755;

/// One `linux.devices` entry, validated.
struct Node<'a> {
    /// As the spec gives it (for messages, and the bind fallback's source).
    path: &'a Path,
    /// The cleaned path under the root: never empty.
    parts: Vec<&'a OsStr>,
    /// `S_IFCHR`, `S_IFBLK` or `S_IFIFO`.
    format: libc::mode_t,
    rdev: libc::dev_t,
    mode: libc::mode_t,
    uid: u32,
    gid: u32,
}

fn invalid(path: &Path, reason: impl Into<String>) -> DevicesError {
    DevicesError::InvalidDevice {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn os_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> DevicesError + 'a {
    move |source| DevicesError::Node {
        path: path.to_path_buf(),
        what,
        source,
    }
}

fn device_number(path: &Path, what: &str, n: i64) -> Result<u32, DevicesError> {
    u32::try_from(n).map_err(|_| invalid(path, format!("{what} number {n} out of range")))
}

impl<'a> Node<'a> {
    fn parse(d: &'a LinuxDevice) -> Result<Self, DevicesError> {
        let path = d.path().as_path();
        if !path.is_absolute() {
            return Err(invalid(path, "path is not absolute"));
        }
        if path.as_os_str().as_bytes().contains(&0) {
            return Err(invalid(path, "path has a NUL byte"));
        }
        // Lexical clean-up, `..` stopping at the root (as runc's CleanPath).
        let mut parts = Vec::new();
        for c in path.components() {
            match c {
                Component::Normal(n) => parts.push(n),
                Component::ParentDir => {
                    parts.pop();
                }
                _ => {}
            }
        }
        if parts.is_empty() {
            return Err(invalid(path, "path is the root"));
        }
        let format = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => return Err(invalid(path, "type a is not a node type")),
        };
        let rdev = if format == libc::S_IFIFO {
            0
        } else {
            let major = device_number(path, "major", d.major())?;
            let minor = device_number(path, "minor", d.minor())?;
            libc::makedev(major, minor)
        };
        Ok(Self {
            path,
            parts,
            format,
            rdev,
            mode: d.file_mode().unwrap_or(DEFAULT_FILE_MODE) & PERMISSION_BITS,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        })
    }

    /// `/dev/ptmx` is the pty set-up's (a symlink to `pts/ptmx`).
    fn is_ptmx(&self) -> bool {
        self.parts == [OsStr::new("dev"), OsStr::new("ptmx")]
    }
}

fn cstring(bytes: &[u8]) -> CString {
    // Paths were checked for NUL bytes in `Node::parse`.
    CString::new(bytes).unwrap_or_default()
}

/// `path` (relative) opened as if `root` were `/`: openat2 with
/// `RESOLVE_IN_ROOT`, no magic links.
fn open_in_root(root: &OwnedFd, path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::from_bits_retain(flags) | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    Ok(nix::fcntl::openat2(root, path, how)?)
}

/// The node's parent directory, made (0755) where missing.
fn parent_dir(root: &OwnedFd, node: &Node) -> Result<OwnedFd, DevicesError> {
    let flags = libc::O_PATH | libc::O_DIRECTORY;
    let mut dir =
        open_in_root(root, Path::new("."), flags).map_err(os_err(node.path, "open the rootfs"))?;
    let mut walked = PathBuf::new();
    for part in &node.parts[..node.parts.len() - 1] {
        walked.push(part);
        dir = match open_in_root(root, &walked, flags) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                match nix::sys::stat::mkdirat(&dir, *part, Mode::from_bits_truncate(DIR_MODE)) {
                    // EEXIST: made meanwhile, or a dangling symlink (refused below).
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(errno) => {
                        return Err(os_err(node.path, "make a parent directory")(errno.into()))
                    }
                }
                open_in_root(root, &walked, flags)
                    .map_err(os_err(node.path, "open a parent directory"))?
            }
            Err(e) => return Err(os_err(node.path, "open a parent directory")(e)),
        };
    }
    Ok(dir)
}

/// What is at `name` in `dir` (not following a symlink).
fn stat_at(dir: &OwnedFd, name: &CString) -> io::Result<libc::stat> {
    Ok(nix::sys::stat::fstatat(
        dir,
        name.as_c_str(),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?)
}

fn describe(st: &libc::stat) -> String {
    let numbers = || format!("{}:{}", libc::major(st.st_rdev), libc::minor(st.st_rdev));
    match st.st_mode & libc::S_IFMT {
        libc::S_IFCHR => format!("character device {}", numbers()),
        libc::S_IFBLK => format!("block device {}", numbers()),
        libc::S_IFIFO => "fifo".into(),
        libc::S_IFDIR => "directory".into(),
        libc::S_IFLNK => "symlink".into(),
        libc::S_IFREG => "regular file".into(),
        _ => "special file".into(),
    }
}

/// Where mknod is refused: an empty file with the guest's node of the same
/// path bound onto it (through the file's descriptor, not its path).
fn bind_guest_node(dir: &OwnedFd, name: &CString, node: &Node) -> Result<(), DevicesError> {
    let target = nix::fcntl::openat(
        dir,
        name.as_c_str(),
        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map(File::from)
    .map_err(|errno| os_err(node.path, "create the bind target")(errno.into()))?;
    let target_path = format!("/proc/self/fd/{}", target.as_raw_fd());
    nix::mount::mount(
        Some(node.path),
        target_path.as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|errno| os_err(node.path, "bind the guest's node")(errno.into()))
}

fn create_node(root: &OwnedFd, node: &Node) -> Result<(), DevicesError> {
    let dir = parent_dir(root, node)?;
    let name = cstring(node.parts[node.parts.len() - 1].as_bytes());
    let made = nix::sys::stat::mknodat(
        &dir,
        name.as_c_str(),
        SFlag::from_bits_retain(node.format),
        Mode::from_bits_truncate(node.mode),
        node.rdev,
    );
    if let Err(errno) = made {
        return match errno {
            Errno::EEXIST => {
                let st =
                    stat_at(&dir, &name).map_err(os_err(node.path, "stat the existing file"))?;
                let same_rdev = node.format == libc::S_IFIFO || st.st_rdev == node.rdev;
                if st.st_mode & libc::S_IFMT == node.format && same_rdev {
                    Ok(())
                } else {
                    Err(DevicesError::Exists {
                        path: node.path.to_path_buf(),
                        found: describe(&st),
                    })
                }
            }
            Errno::EPERM if node.format != libc::S_IFIFO => bind_guest_node(&dir, &name, node),
            _ => Err(os_err(node.path, "mknod")(errno.into())),
        };
    }
    // The mode without the umask. The name is the node just made.
    nix::sys::stat::fchmodat(
        &dir,
        name.as_c_str(),
        Mode::from_bits_truncate(node.mode),
        FchmodatFlags::FollowSymlink,
    )
    .map_err(|errno| os_err(node.path, "chmod")(errno.into()))?;
    // A symlink is not followed.
    nix::unistd::fchownat(
        &dir,
        name.as_c_str(),
        Some(Uid::from_raw(node.uid)),
        Some(Gid::from_raw(node.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|errno| os_err(node.path, "chown")(errno.into()))
}

/// Makes the nodes of `devices` under `root` (the container's rootfs, not
/// yet entered), in order. Every entry is validated before any is made.
pub fn create_nodes(root: &Path, devices: &[LinuxDevice]) -> Result<(), DevicesError> {
    let nodes = devices
        .iter()
        .map(Node::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let root_fd = File::open(root).map_err(|source| DevicesError::Node {
        path: root.to_path_buf(),
        what: "open the rootfs",
        source,
    })?;
    let root_fd = OwnedFd::from(root_fd);
    for node in nodes.iter().filter(|n| !n.is_ptmx()) {
        create_node(&root_fd, node)?;
    }
    Ok(())
}
