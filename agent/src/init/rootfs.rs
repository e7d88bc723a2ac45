//! The container's file system view, built in its new mount namespace:
//! the rootfs (a directory of the virtio-fs share) bound onto itself, the
//! default and spec mounts under it, device nodes, then pivot_root (or, when
//! the guest's root is the initramfs, which pivot_root refuses, a move onto
//! `/` plus chroot), masked and read-only paths, read-only root, hostname
//! and sysctls.

use std::ffi::CString;
use std::fs::File;
use std::os::unix::fs::symlink;
use std::path::Path;

use agent_protocol::container::{ContainerConfig, Linux, LinuxNamespaceType as Ns, Process};

use super::console;
use super::mountopts::MountOpts;
use super::securejoin;
use super::{check, checked, InitError, Result};

fn cstr(s: impl AsRef<[u8]>) -> Result<CString> {
    CString::new(s.as_ref().to_vec()).map_err(|_| InitError::Msg("path with a NUL byte".into()))
}

fn path_cstr(p: &Path) -> Result<CString> {
    cstr(p.as_os_str().as_encoded_bytes())
}

/// mount(2) with optional strings (the flags as mount(2) takes them).
fn mount(
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: &str,
) -> Result<()> {
    let data = Some(data).filter(|d| !d.is_empty());
    checked(
        nix::mount::mount(
            source,
            target,
            fstype,
            nix::mount::MsFlags::from_bits_retain(flags),
            data,
        ),
        || {
            format!(
                "mount {} on {} (type {})",
                source.unwrap_or("none"),
                target.display(),
                fstype.unwrap_or("none")
            )
        },
    )
}

fn ensure_inside(root: &Path, path: &Path) -> Result<()> {
    let real = std::fs::canonicalize(path)
        .map_err(|e| InitError::os(format!("resolve {}", path.display()), e))?;
    let real_root =
        std::fs::canonicalize(root).map_err(|e| InitError::os("resolve the rootfs", e))?;
    if real.starts_with(&real_root) {
        Ok(())
    } else {
        Err(InitError::Msg(format!(
            "{} resolves outside the container's rootfs",
            path.display()
        )))
    }
}

/// One mount to make, from the spec (or a default).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    destination: String,
    source: Option<String>,
    fstype: Option<String>,
    options: Vec<String>,
}

impl From<&oci_spec::runtime::Mount> for Mount {
    fn from(m: &oci_spec::runtime::Mount) -> Self {
        Mount {
            destination: m.destination().to_string_lossy().into_owned(),
            source: m
                .source()
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned()),
            fstype: m.typ().clone(),
            options: m.options().clone().unwrap_or_default(),
        }
    }
}

fn default_mounts() -> Vec<Mount> {
    let m = |dest: &str, fstype: &str, opts: &[&str]| Mount {
        destination: dest.into(),
        source: Some(fstype.into()),
        fstype: Some(fstype.into()),
        options: opts.iter().map(|s| s.to_string()).collect(),
    };
    vec![
        m("/proc", "proc", &["nosuid", "noexec", "nodev"]),
        m(
            "/dev",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        m(
            "/dev/pts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
            ],
        ),
        m(
            "/dev/shm",
            "tmpfs",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        m("/dev/mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
        m("/sys", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
    ]
}

/// The mounts to make: the defaults the spec does not override, then the spec's.
fn all_mounts(spec: &[Mount]) -> Vec<Mount> {
    let mut out: Vec<Mount> = default_mounts()
        .into_iter()
        .filter(|d| !spec.iter().any(|m| m.destination == d.destination))
        .collect();
    out.extend(spec.iter().cloned());
    out
}

fn mount_one(root: &Path, m: &Mount) -> Result<()> {
    let dest = securejoin::resolve(root, &m.destination)?;
    let opts = MountOpts::parse(&m.options);
    let fstype = m.fstype.as_deref().unwrap_or("");
    if opts.bind || fstype == "bind" {
        let source = m.source.as_deref().ok_or_else(|| {
            InitError::Msg(format!("bind mount on {} has no source", m.destination))
        })?;
        let meta = std::fs::metadata(source)
            .map_err(|e| InitError::os(format!("bind mount source {source}"), e))?;
        make_target(&dest, meta.is_dir())?;
        ensure_inside(root, &dest)?;
        let rec = if opts.recursive { libc::MS_REC } else { 0 };
        mount(Some(source), &dest, None, libc::MS_BIND | rec, "")?;
        if opts.flags != 0 {
            let flags = libc::MS_BIND | libc::MS_REMOUNT | rec | opts.flags;
            mount(None, &dest, None, flags, "")?;
        }
    } else {
        make_target(&dest, true)?;
        ensure_inside(root, &dest)?;
        let fstype = if fstype == "cgroup" {
            "cgroup2"
        } else {
            fstype
        };
        let source = m.source.as_deref().unwrap_or(fstype);
        // tmpcopyup: what the directory held, read through a descriptor
        // taken before the tmpfs covers it.
        let below = match opts.tmpcopyup && fstype == "tmpfs" {
            true => Some(File::open(&dest).map_err(|e| InitError::os("tmpcopyup", e))?),
            false => None,
        };
        match mount(Some(source), &dest, Some(fstype), opts.flags, &opts.data) {
            // In a user namespace without a network namespace of its own
            // (the VM is the container's network), sysfs cannot be mounted
            // (nor cgroup2 without its cgroup namespace): the guest's is
            // bound read-only instead, as runc does for rootless containers.
            // (cgroup2 says EBUSY when the bound /sys already brought the
            // guest's cgroup mount along.)
            Err(InitError::Os { ref source, .. })
                if matches!(source.raw_os_error(), Some(libc::EPERM | libc::EBUSY))
                    && matches!(fstype, "sysfs" | "cgroup2") =>
            {
                let guest = if fstype == "sysfs" {
                    "/sys"
                } else {
                    "/sys/fs/cgroup"
                };
                mount(Some(guest), &dest, None, libc::MS_BIND | libc::MS_REC, "")?;
                let ro = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | opts.flags;
                mount(None, &dest, None, ro, "")?;
            }
            other => other?,
        }
        if let Some(below) = below {
            let from = Path::new("/proc/self/fd")
                .join(std::os::fd::AsRawFd::as_raw_fd(&below).to_string());
            copy_tree(&from, &dest)
                .map_err(|e| InitError::os(format!("tmpcopyup to {}", m.destination), e))?;
        }
    }
    if opts.rec_set != 0 || opts.rec_clear != 0 {
        set_attr_recursive(&dest, opts.rec_set, opts.rec_clear)?;
    }
    if opts.propagation != 0 {
        mount(None, &dest, None, opts.propagation, "")?;
    }
    Ok(())
}

/// `mount_setattr(AT_RECURSIVE)`: the recursive options (`rro`, …).
fn set_attr_recursive(dest: &Path, set: u64, clear: u64) -> Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let c = path_cstr(dest)?;
    // SAFETY: a valid path and a mount_attr of the size passed, alive for the
    // call (nix has no mount_setattr).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(rc as libc::c_int, || {
        format!("mount_setattr on {}", dest.display())
    })
}

/// `linux.rootfsPropagation` as mount(2) flags, as runc maps it: the
/// `r`-prefixed modes are recursive, the others apply to `/` alone (so the
/// spec's own mounts keep the propagation their options gave them).
pub fn root_propagation(mode: Option<&str>) -> Result<libc::c_ulong> {
    Ok(match mode {
        None | Some("") => 0,
        Some("shared") => libc::MS_SHARED,
        Some("rshared") => libc::MS_SHARED | libc::MS_REC,
        Some("slave") => libc::MS_SLAVE,
        Some("rslave") => libc::MS_SLAVE | libc::MS_REC,
        Some("private") => libc::MS_PRIVATE,
        Some("rprivate") => libc::MS_PRIVATE | libc::MS_REC,
        Some("unbindable") => libc::MS_UNBINDABLE,
        Some("runbindable") => libc::MS_UNBINDABLE | libc::MS_REC,
        Some(other) => {
            return Err(InitError::Msg(format!(
                "linux.rootfsPropagation {other:?} is not shared, slave, private or unbindable"
            )))
        }
    })
}

/// Copies a directory tree (files, directories, symlinks; modes and owners
/// kept) from `from` into the existing directory `to`.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let meta = std::fs::symlink_metadata(entry.path())?;
        let target = to.join(entry.file_name());
        if meta.file_type().is_symlink() {
            symlink(std::fs::read_link(entry.path())?, &target)?;
        } else if meta.is_dir() {
            std::fs::create_dir(&target)?;
            copy_tree(&entry.path(), &target)?;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(meta.mode()))?;
        } else if meta.is_file() {
            std::fs::copy(entry.path(), &target)?;
        } else {
            continue;
        }
        lchown(&target, Some(meta.uid()), Some(meta.gid()))?;
    }
    Ok(())
}

fn make_target(dest: &Path, dir: bool) -> Result<()> {
    if dir {
        std::fs::create_dir_all(dest)
            .map_err(|e| InitError::os(format!("mkdir {}", dest.display()), e))
    } else {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| InitError::os(format!("mkdir {}", parent.display()), e))?;
        }
        if !dest.exists() {
            std::fs::File::create(dest)
                .map_err(|e| InitError::os(format!("create {}", dest.display()), e))?;
        }
        Ok(())
    }
}

/// The device nodes (`linux.devices` plus runc's defaults, made by
/// [`crate::devices::create_nodes`] inside the root) and the usual
/// symlinks in the container's /dev. A spec that bind-mounts `/dev` from
/// elsewhere gets no nodes made, as with runc.
fn populate_dev(root: &Path, terminal: bool, linux: &Linux, dev_bound: bool) -> Result<()> {
    let dev = root.join("dev");
    if !dev_bound {
        let (devices, _) =
            crate::devices::with_runc_defaults(linux.devices().as_deref().unwrap_or_default(), &[]);
        crate::devices::create_nodes(root, &devices)
            .map_err(|e| InitError::Msg(format!("linux.devices: {e}")))?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        let path = dev.join(link);
        if std::fs::symlink_metadata(&path).is_err() {
            symlink(target, &path)
                .map_err(|e| InitError::os(format!("symlink {}", path.display()), e))?;
        }
    }
    if terminal {
        // The console is the process's terminal (its stdin is the pty
        // slave), bound through the descriptor, not a path to it.
        let console = dev.join("console");
        make_target(&console, false)?;
        mount(Some("/proc/self/fd/0"), &console, None, libc::MS_BIND, "")?;
    }
    Ok(())
}

/// Makes `root` the process's `/`.
fn enter_root(root: &Path) -> Result<()> {
    checked(nix::unistd::chdir(root), || "chdir to the rootfs".into())?;
    // pivot_root(".", ".") stacks the old root under the new one.
    if nix::unistd::pivot_root(".", ".").is_ok() {
        // Detaching the old root, now stacked on `.`.
        checked(
            nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH),
            || "detach the old root".into(),
        )?;
    } else {
        // The guest's root is the initramfs, which pivot_root refuses.
        mount(root.to_str(), Path::new("/"), None, libc::MS_MOVE, "")?;
        checked(nix::unistd::chroot("."), || "chroot".into())?;
    }
    checked(nix::unistd::chdir("/"), || "chdir /".into())
}

fn mask(path: &str) -> Result<()> {
    let p = Path::new(path);
    match std::fs::metadata(p) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => mount(Some("tmpfs"), p, Some("tmpfs"), libc::MS_RDONLY, ""),
        Ok(_) => mount(Some("/dev/null"), p, None, libc::MS_BIND, ""),
    }
}

fn readonly(path: &str) -> Result<()> {
    let p = Path::new(path);
    if !p.exists() {
        return Ok(());
    }
    mount(Some(path), p, None, libc::MS_BIND | libc::MS_REC, "")?;
    let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC;
    mount(None, p, None, flags, "")
}

/// Builds the container's root and enters it, in the container's new mount
/// namespace. With a terminal, returns the master of its pty (see
/// [`console`]).
pub fn build(config: &ContainerConfig, process: &Process) -> Result<Option<File>> {
    let terminal = process.terminal().unwrap_or(false);
    let linux = config.linux();
    let root = config.rootfs();
    if !root.is_dir() {
        return Err(InitError::Msg(format!(
            "rootfs {} is not a directory",
            root.display()
        )));
    }
    let propagation = root_propagation(linux.rootfs_propagation().as_deref())?;
    mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        "",
    )?;
    mount(
        Some(&root.to_string_lossy()),
        root,
        None,
        libc::MS_BIND | libc::MS_REC,
        "",
    )?;
    let spec_mounts: Vec<Mount> = config
        .spec
        .mounts()
        .iter()
        .flatten()
        .map(Mount::from)
        .collect();
    for m in all_mounts(&spec_mounts) {
        mount_one(root, &m)?;
    }
    let console = if terminal {
        Some(console::take_pty(root, spawn_size(process))?)
    } else {
        None
    };
    let dev_bound = spec_mounts
        .iter()
        .any(|m| m.destination == "/dev" && MountOpts::parse(&m.options).bind);
    populate_dev(root, terminal, &linux, dev_bound)?;
    enter_root(root)?;
    if propagation != 0 {
        mount(None, Path::new("/"), None, propagation, "")?;
    }
    let namespaces = config.namespaces();
    if namespaces.contains(&Ns::Uts) {
        if let Some(name) = config.spec.hostname().as_deref().filter(|h| !h.is_empty()) {
            checked(nix::unistd::sethostname(name), || {
                format!("sethostname {name}")
            })?;
        }
        if let Some(name) = config
            .spec
            .domainname()
            .as_deref()
            .filter(|h| !h.is_empty())
        {
            // SAFETY: pointer and length of a live string (nix has no
            // setdomainname).
            let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
            check(rc, || format!("setdomainname {name}"))?;
        }
    }
    let mut sysctl: Vec<_> = linux.sysctl().iter().flatten().collect();
    sysctl.sort();
    for (key, value) in sysctl {
        if key.contains("..") || key.contains('/') {
            return Err(InitError::Msg(format!("invalid sysctl {key}")));
        }
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value).map_err(|e| InitError::os(format!("sysctl {key}"), e))?;
    }
    for p in linux.readonly_paths().iter().flatten() {
        readonly(p)?;
    }
    for p in linux.masked_paths().iter().flatten() {
        mask(p)?;
    }
    if config.readonly_rootfs() {
        let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
        mount(None, Path::new("/"), None, flags, "")?;
    }
    Ok(console)
}

fn spawn_size(process: &Process) -> Option<agent_protocol::container::WindowSize> {
    crate::container::spawn::console_size(process)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_mounts_override_defaults() {
        let spec = vec![Mount {
            destination: "/dev/shm".into(),
            source: Some("shm".into()),
            fstype: Some("tmpfs".into()),
            options: vec!["size=1m".into()],
        }];
        let all = all_mounts(&spec);
        assert_eq!(
            all.iter().filter(|m| m.destination == "/dev/shm").count(),
            1
        );
        assert_eq!(all.last().unwrap().options, ["size=1m"]);
        assert!(all.iter().any(|m| m.destination == "/proc"));
    }

    #[test]
    fn root_propagation_is_recursive_only_for_r_modes() {
        assert_eq!(root_propagation(Some("private")).unwrap(), libc::MS_PRIVATE);
        assert_eq!(
            root_propagation(Some("rslave")).unwrap(),
            libc::MS_SLAVE | libc::MS_REC
        );
        assert_eq!(root_propagation(None).unwrap(), 0);
        assert!(root_propagation(Some("sideways")).is_err());
    }
}
