//! Putting the sandbox process (and so the VMM it runs) into the spec's
//! `linux.cgroupsPath` on the host, the way runc's cgroupfs managers do, on
//! cgroup v1, cgroup v2 and hybrid hosts (v1 controllers plus a cgroup2
//! mount, usually `/sys/fs/cgroup/unified`, which is joined too).
//!
//! Every mounted hierarchy is joined: with v1 each controller mount
//! (`cpu,cpuacct`, `memory`, `pids`, `name=systemd`, …). Where the
//! directory goes is described in [`path`]. Missing directories are
//! created (and removed again if the join fails); on cgroup v2 `cpu`,
//! `memory` and `pids` are enabled, best effort, in the ancestors'
//! `cgroup.subtree_control`; a new v1 cpuset gets its parent's `cpus` and
//! `mems` (an empty cpuset takes no processes).
//!
//! With `--systemd-cgroup` hull does not talk to systemd: it creates the
//! directories systemd would have created (see [`path`]) itself.
//!
//! The joined directories ([`Cgroup::paths`]) are the record a later
//! `hull delete` passes to [`remove`] and `hull ps` to [`pids`].

use std::io;
use std::path::{Path, PathBuf};

use device_filter::BpfInsn;

pub mod devices;
pub mod mountinfo;
pub mod path;

pub use mountinfo::Hierarchy;
pub use path::CgroupPath;

const MOUNTINFO: &str = "/proc/self/mountinfo";
const OWN_CGROUP: &str = "/proc/self/cgroup";
/// Controllers enabled for children on cgroup v2, best effort.
const V2_CONTROLLERS: [&str; 3] = ["+cpu", "+memory", "+pids"];

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("no cgroup file system is mounted")]
    NoHierarchies,
    #[error("cgroupsPath {0:?} climbs above its starting point")]
    Escape(String),
    #[error("cgroupsPath {0:?} names the root cgroup")]
    RootCgroup(String),
    #[error("systemd cgroupsPath {path:?}: {why}")]
    SystemdPath { path: String, why: String },
    #[error("this process has no cgroup in the {0} hierarchy")]
    NoOwnCgroup(String),
    #[error("own cgroup {own} in the {hierarchy} hierarchy is outside its mount (root {root})")]
    OutsideMount {
        hierarchy: String,
        own: String,
        root: String,
    },
    #[error("cannot create cgroup {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot move pid {pid} into cgroup {path}: {source}")]
    Join {
        pid: i32,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cgroup {path}: device filter: {source}")]
    Devices {
        path: PathBuf,
        source: device_filter::FilterError,
    },
    #[error("cgroup {0} still has processes in it")]
    Populated(PathBuf),
    #[error("cannot remove cgroup {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
}

/// A joined cgroup: one directory per hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    paths: Vec<PathBuf>,
    created: Vec<PathBuf>,
    /// Where the process was before, per hierarchy (for [`Cgroup::leave`]).
    origins: Vec<PathBuf>,
}

impl Cgroup {
    /// Moves `pid` into the cgroup `path_spec` (`linux.cgroupsPath`; `None`
    /// for runc's default from the container `id`) in every hierarchy of
    /// this host, creating what is missing. `devices`, if given, is
    /// attached to the cgroup v2 directory before `pid` moves in (see
    /// [`devices`]), so the process never runs there unfiltered.
    pub fn join(
        path_spec: Option<&str>,
        id: &str,
        systemd: bool,
        pid: i32,
        devices: Option<&[BpfInsn]>,
    ) -> Result<Cgroup, CgroupError> {
        let path = CgroupPath::parse(path_spec, id, systemd)?;
        let hierarchies = mountinfo::parse_mountinfo(&read(Path::new(MOUNTINFO))?);
        let own = mountinfo::parse_proc_cgroup(&read(Path::new(OWN_CGROUP))?);
        Self::join_in(&hierarchies, &own, &path, pid, devices)
    }

    /// [`Cgroup::join`] with the hierarchies and the process's own cgroups
    /// given.
    pub fn join_in(
        hierarchies: &[Hierarchy],
        own: &[(String, String)],
        path: &CgroupPath,
        pid: i32,
        devices: Option<&[BpfInsn]>,
    ) -> Result<Cgroup, CgroupError> {
        if hierarchies.is_empty() {
            return Err(CgroupError::NoHierarchies);
        }
        let pure_v2 = hierarchies.iter().all(|h| h.unified);
        let dirs = hierarchies
            .iter()
            .map(|h| path.place(h, mountinfo::own_cgroup(h, own), pure_v2))
            .collect::<Result<Vec<_>, _>>()?;
        let origins = hierarchies
            .iter()
            .map(|h| {
                let own = mountinfo::own_cgroup(h, own).unwrap_or("/");
                h.mountpoint.join(own.trim_start_matches('/'))
            })
            .collect();
        let mut cgroup = Cgroup {
            paths: dirs.clone(),
            created: Vec::new(),
            origins,
        };
        let result = hierarchies
            .iter()
            .zip(&dirs)
            .try_for_each(|(h, dir)| cgroup.create(h, dir))
            .and_then(|()| {
                let Some(prog) = devices else { return Ok(()) };
                hierarchies
                    .iter()
                    .zip(&dirs)
                    .filter(|(h, _)| h.unified)
                    .try_for_each(|(_, dir)| {
                        device_filter::attach(dir, prog).map_err(|source| CgroupError::Devices {
                            path: dir.clone(),
                            source,
                        })
                    })
            })
            .and_then(|()| {
                dirs.iter().try_for_each(|dir| {
                    std::fs::write(dir.join("cgroup.procs"), pid.to_string()).map_err(|source| {
                        CgroupError::Join {
                            pid,
                            path: dir.clone(),
                            source,
                        }
                    })
                })
            });
        match result {
            Ok(()) => Ok(cgroup),
            Err(e) => {
                cgroup.undo();
                Err(e)
            }
        }
    }

    /// Creates `dir` and its missing ancestors below the mount point.
    fn create(&mut self, hierarchy: &Hierarchy, dir: &Path) -> Result<(), CgroupError> {
        let relative = dir.strip_prefix(&hierarchy.mountpoint).unwrap_or(dir);
        let mut current = hierarchy.mountpoint.clone();
        let cpuset = hierarchy.controllers.iter().any(|c| c == "cpuset");
        for component in relative.components() {
            if hierarchy.unified {
                for c in V2_CONTROLLERS {
                    // Best effort: the controller may be missing, bound to
                    // v1, or the cgroup may hold processes.
                    let _ = std::fs::write(current.join("cgroup.subtree_control"), c);
                }
            }
            let parent = current.clone();
            current.push(component);
            match std::fs::create_dir(&current) {
                Ok(()) => self.created.push(current.clone()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(source) => {
                    return Err(CgroupError::Create {
                        path: current,
                        source,
                    })
                }
            }
            if cpuset {
                copy_cpuset(&parent, &current)?;
            }
        }
        Ok(())
    }

    /// Removes what [`Cgroup::join_in`] created, deepest first; best effort.
    fn undo(&mut self) {
        for dir in self.created.drain(..).rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }

    /// The joined directories, one per hierarchy: the record to keep for
    /// [`remove`] and [`pids`].
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Moves `pid` back where it was before the join and removes what the
    /// join created (a sandbox that failed to start); best effort.
    pub fn leave(mut self, pid: i32) {
        for dir in &self.origins {
            let _ = std::fs::write(dir.join("cgroup.procs"), pid.to_string());
        }
        self.undo();
    }

    /// The directories the join created, parents first.
    pub fn created(&self) -> &[PathBuf] {
        &self.created
    }
}

/// A new v1 cpuset takes no processes until it has CPUs and memory nodes:
/// give it its parent's.
fn copy_cpuset(parent: &Path, dir: &Path) -> Result<(), CgroupError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let current = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        if !current.trim().is_empty() {
            continue;
        }
        let inherited = std::fs::read_to_string(parent.join(file)).unwrap_or_default();
        if inherited.trim().is_empty() {
            continue;
        }
        std::fs::write(dir.join(file), inherited.trim()).map_err(|source| CgroupError::Create {
            path: dir.join(file),
            source,
        })?;
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Removes the recorded cgroup directories (`rmdir`, never anything
/// inside). A directory already gone is fine; one that still has processes
/// is [`CgroupError::Populated`]. Every path is tried; the first error is
/// returned.
pub fn remove(paths: &[PathBuf]) -> Result<(), CgroupError> {
    let mut first = None;
    for path in paths {
        let result = match std::fs::remove_dir(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                Err(CgroupError::Populated(path.clone()))
            }
            Err(source) => Err(CgroupError::Remove {
                path: path.clone(),
                source,
            }),
        };
        if let Err(e) = result {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// The processes in the recorded cgroup (every hierarchy's `cgroup.procs`,
/// merged), sorted; unreadable directories are skipped.
pub fn pids(paths: &[PathBuf]) -> Vec<i32> {
    let mut pids: Vec<i32> = paths
        .iter()
        .filter_map(|p| std::fs::read_to_string(p.join("cgroup.procs")).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

#[cfg(test)]
mod tests;
