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
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::defaults::DEFAULT_FILE_MODE;
use super::DevicesError;

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
    let c = cstring(path.as_os_str().as_bytes());
    // SAFETY: all-zero is a valid open_how; the fields are set below.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: openat2 with a valid dirfd, a NUL-terminated path and an
    // open_how of the size passed, all alive for the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
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
                let name = cstring(part.as_bytes());
                // SAFETY: a valid dirfd and NUL-terminated name.
                let rc = unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), DIR_MODE) };
                let e = io::Error::last_os_error();
                // EEXIST: made meanwhile, or a dangling symlink (refused below).
                if rc < 0 && e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(os_err(node.path, "make a parent directory")(e));
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
    // SAFETY: all-zero is a valid stat buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid dirfd, NUL-terminated name, and a stat buffer alive
    // for the call.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
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
    // SAFETY: valid dirfd and NUL-terminated name; the fd returned is
    // owned below.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o644 as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(os_err(node.path, "create the bind target")(
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: a fresh descriptor owned here.
    let target = unsafe { File::from_raw_fd(fd) };
    let source = cstring(node.path.as_os_str().as_bytes());
    let target_path = cstring(format!("/proc/self/fd/{}", target.as_raw_fd()).as_bytes());
    // SAFETY: NUL-terminated paths alive for the call; a plain bind mount.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target_path.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        return Err(os_err(node.path, "bind the guest's node")(
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

fn create_node(root: &OwnedFd, node: &Node) -> Result<(), DevicesError> {
    let dir = parent_dir(root, node)?;
    let name = cstring(node.parts[node.parts.len() - 1].as_bytes());
    // SAFETY: valid dirfd and NUL-terminated name.
    let rc = unsafe {
        libc::mknodat(
            dir.as_raw_fd(),
            name.as_ptr(),
            node.format | node.mode,
            node.rdev,
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EEXIST) => {
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
            Some(libc::EPERM) if node.format != libc::S_IFIFO => bind_guest_node(&dir, &name, node),
            _ => Err(os_err(node.path, "mknod")(e)),
        };
    }
    // The mode without the umask. The name is the node just made.
    // SAFETY: valid dirfd and NUL-terminated name.
    let rc = unsafe { libc::fchmodat(dir.as_raw_fd(), name.as_ptr(), node.mode, 0) };
    if rc < 0 {
        return Err(os_err(node.path, "chmod")(io::Error::last_os_error()));
    }
    // SAFETY: valid dirfd and NUL-terminated name; a symlink is not followed.
    let rc = unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            name.as_ptr(),
            node.uid,
            node.gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc < 0 {
        return Err(os_err(node.path, "chown")(io::Error::last_os_error()));
    }
    Ok(())
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
