//! The guest's base file systems.

use std::ffi::CString;
use std::io;

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mount {fstype} on {target} failed: {source}")]
    Mount {
        fstype: &'static str,
        target: &'static str,
        source: io::Error,
    },
    #[error("mkdir {path} failed: {source}")]
    Mkdir {
        path: &'static str,
        source: io::Error,
    },
}

struct Mount {
    fstype: &'static str,
    target: &'static str,
    flags: libc::c_ulong,
    data: &'static str,
}

const NOSUID_NODEV_NOEXEC: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;

/// In order: each target exists once the mounts before it are done.
const BASE_MOUNTS: &[Mount] = &[
    Mount {
        fstype: "proc",
        target: "/proc",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
    },
    Mount {
        fstype: "sysfs",
        target: "/sys",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
    },
    Mount {
        fstype: "cgroup2",
        target: "/sys/fs/cgroup",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
    },
    Mount {
        fstype: "devtmpfs",
        target: "/dev",
        flags: libc::MS_NOSUID,
        data: "mode=0755",
    },
    Mount {
        fstype: "devpts",
        target: "/dev/pts",
        flags: libc::MS_NOSUID | libc::MS_NOEXEC,
        data: "newinstance,ptmxmode=0666,mode=0620",
    },
    Mount {
        fstype: "tmpfs",
        target: "/dev/shm",
        flags: libc::MS_NOSUID | libc::MS_NODEV,
        data: "mode=1777",
    },
    Mount {
        fstype: "tmpfs",
        target: "/run",
        flags: libc::MS_NOSUID | libc::MS_NODEV,
        data: "mode=0755",
    },
];

fn cstr(s: &str) -> CString {
    // The strings here are constants without NUL bytes.
    CString::new(s).unwrap_or_default()
}

fn mkdir(path: &'static str) -> Result<(), MountError> {
    match std::fs::create_dir(path) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            Err(MountError::Mkdir { path, source: e })
        }
        _ => Ok(()),
    }
}

/// Mounts the sandbox's virtio-fs share (tag [`agent_protocol::SHARE_TAG`])
/// at [`agent_protocol::SHARE_MOUNT`].
pub fn mount_share() -> Result<(), MountError> {
    let target = agent_protocol::SHARE_MOUNT;
    std::fs::create_dir_all(target).map_err(|source| MountError::Mkdir {
        path: agent_protocol::SHARE_MOUNT,
        source,
    })?;
    let (source, target_c, fstype) = (
        cstr(agent_protocol::SHARE_TAG),
        cstr(target),
        cstr("virtiofs"),
    );
    // SAFETY: valid NUL-terminated strings that outlive the call; no data.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target_c.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(MountError::Mount {
            fstype: "virtiofs",
            target: agent_protocol::SHARE_MOUNT,
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Mounts /proc, /sys, /sys/fs/cgroup, /dev, /dev/pts, /dev/shm and /run.
pub fn mount_base() -> Result<(), MountError> {
    for m in BASE_MOUNTS {
        mkdir(m.target)?;
        let (source, target, fstype, data) =
            (cstr(m.fstype), cstr(m.target), cstr(m.fstype), cstr(m.data));
        // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
        let rc = unsafe {
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                m.flags,
                data.as_ptr().cast(),
            )
        };
        if rc != 0 {
            let source = io::Error::last_os_error();
            if source.raw_os_error() != Some(libc::EBUSY) {
                return Err(MountError::Mount {
                    fstype: m.fstype,
                    target: m.target,
                    source,
                });
            }
        }
    }
    // /dev/ptmx must lead to this devpts instance.
    let _ = std::fs::remove_file("/dev/ptmx");
    std::os::unix::fs::symlink("pts/ptmx", "/dev/ptmx").map_err(|source| MountError::Mkdir {
        path: "/dev/ptmx",
        source,
    })
}
