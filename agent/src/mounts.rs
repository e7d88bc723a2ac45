//! The guest's base file systems.

use std::io;

use nix::errno::Errno;
use nix::mount::MsFlags;

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
    flags: MsFlags,
    data: &'static str,
}

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

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
        flags: MsFlags::MS_NOSUID,
        data: "mode=0755",
    },
    Mount {
        fstype: "devpts",
        target: "/dev/pts",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        data: "newinstance,ptmxmode=0666,mode=0620",
    },
    Mount {
        fstype: "tmpfs",
        target: "/dev/shm",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: "mode=1777",
    },
    Mount {
        fstype: "tmpfs",
        target: "/run",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: "mode=0755",
    },
];

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
    nix::mount::mount(
        Some(agent_protocol::SHARE_TAG),
        target,
        Some("virtiofs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|errno| MountError::Mount {
        fstype: "virtiofs",
        target: agent_protocol::SHARE_MOUNT,
        source: io::Error::from(errno),
    })
}

/// Mounts /proc, /sys, /sys/fs/cgroup, /dev, /dev/pts, /dev/shm and /run.
pub fn mount_base() -> Result<(), MountError> {
    for m in BASE_MOUNTS {
        mkdir(m.target)?;
        match nix::mount::mount(
            Some(m.fstype),
            m.target,
            Some(m.fstype),
            m.flags,
            Some(m.data),
        ) {
            Ok(()) | Err(Errno::EBUSY) => {}
            Err(errno) => {
                return Err(MountError::Mount {
                    fstype: m.fstype,
                    target: m.target,
                    source: io::Error::from(errno),
                })
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
