//! `linux.cgroupsPath` as a place in each hierarchy.
//!
//! cgroupfs driver (runc's `fs`/`fs2` managers, which hull follows):
//! - an absolute path is taken from the root of each hierarchy
//!   (`/a/b` → `<mountpoint>/a/b`);
//! - a relative path is taken from the process's own cgroup in that
//!   hierarchy with cgroup v1 (and the v1-style unified mount of a hybrid
//!   host), and from the *parent* of its own cgroup on a pure cgroup v2 host
//!   (a cgroup with processes in it cannot enable controllers for its
//!   children, so runc steps up one level);
//! - no path at all means the container id, relative (runc's default).
//!
//! `..` and `.` components are resolved lexically; a path that would climb
//! above its starting point is refused (runc clamps such paths silently;
//! hull would rather say so).
//!
//! systemd driver (`--systemd-cgroup`, path `slice:prefix:name`): hull does
//! not talk to systemd (the test hosts have none). It creates the
//! directories systemd would use, with cgroupfs: the slice expanded like
//! systemd does (`a-b.slice` → `/a.slice/a-b.slice`; empty → `system.slice`;
//! `-.slice` → the root), then the unit `prefix-name.scope` (runc's naming,
//! kept even when the prefix is empty), or `name` itself when it ends in
//! `.slice`. The result is taken from the root of each hierarchy. No path at
//! all means `:runc:<id>`.

use std::path::PathBuf;

use super::mountinfo::Hierarchy;
use super::CgroupError;

/// A container's cgroup, before it is placed in a hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupPath {
    /// From the root of each hierarchy.
    Absolute(Vec<String>),
    /// From the process's own cgroup (v1, hybrid) or its parent (pure v2).
    Relative(Vec<String>),
}

impl CgroupPath {
    /// Parses `linux.cgroupsPath`; `None` or empty gives runc's default for
    /// container `id`.
    pub fn parse(spec: Option<&str>, id: &str, systemd: bool) -> Result<Self, CgroupError> {
        match (spec.filter(|s| !s.is_empty()), systemd) {
            (Some(spec), true) => systemd_path(spec),
            (None, true) => systemd_path(&format!(":runc:{id}")),
            (Some(spec), false) => cgroupfs_path(spec),
            (None, false) => cgroupfs_path(id),
        }
    }

    /// The directory in `hierarchy`, given the process's own cgroup there
    /// (from `/proc/self/cgroup`) and whether the host is pure cgroup v2.
    pub fn place(
        &self,
        hierarchy: &Hierarchy,
        own: Option<&str>,
        pure_v2: bool,
    ) -> Result<PathBuf, CgroupError> {
        let mut dir = hierarchy.mountpoint.clone();
        let components = match self {
            CgroupPath::Absolute(c) => c,
            CgroupPath::Relative(c) => {
                let own = own.ok_or_else(|| CgroupError::NoOwnCgroup(hierarchy.name()))?;
                let mut base = relative_to_root(own, &hierarchy.root).ok_or_else(|| {
                    CgroupError::OutsideMount {
                        hierarchy: hierarchy.name(),
                        own: own.to_string(),
                        root: hierarchy.root.clone(),
                    }
                })?;
                if pure_v2 {
                    base.pop();
                }
                dir.extend(base);
                c
            }
        };
        dir.extend(components);
        Ok(dir)
    }
}

/// `own` with the mount's `root` taken off, as components; `None` when the
/// cgroup is not under the mounted part of the hierarchy.
fn relative_to_root(own: &str, root: &str) -> Option<Vec<String>> {
    let own = normalise(own).ok()?;
    let root = normalise(root).ok()?;
    own.strip_prefix(root.as_slice()).map(<[String]>::to_vec)
}

/// Lexical clean-up: drops empty and `.` components, applies `..`; an
/// escape above the start is an error.
fn normalise(path: &str) -> Result<Vec<String>, CgroupError> {
    let mut out: Vec<String> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(CgroupError::Escape(path.to_string()));
                }
            }
            c => out.push(c.to_string()),
        }
    }
    Ok(out)
}

fn cgroupfs_path(spec: &str) -> Result<CgroupPath, CgroupError> {
    let components = normalise(spec)?;
    if components.is_empty() {
        return Err(CgroupError::RootCgroup(spec.to_string()));
    }
    Ok(if spec.starts_with('/') {
        CgroupPath::Absolute(components)
    } else {
        CgroupPath::Relative(components)
    })
}

fn systemd_path(spec: &str) -> Result<CgroupPath, CgroupError> {
    let bad = |why: &str| CgroupError::SystemdPath {
        path: spec.to_string(),
        why: why.to_string(),
    };
    let [slice, prefix, name] = spec.split(':').collect::<Vec<_>>()[..] else {
        return Err(bad("expected slice:prefix:name"));
    };
    if name.is_empty() {
        return Err(bad("the name is empty"));
    }
    if [prefix, name].iter().any(|s| s.contains('/') || *s == "..") {
        return Err(bad("prefix and name must not contain '/'"));
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let mut components = expand_slice(slice).ok_or_else(|| bad("invalid slice name"))?;
    components.push(if name.ends_with(".slice") {
        name.to_string()
    } else {
        format!("{prefix}-{name}.scope")
    });
    Ok(CgroupPath::Absolute(components))
}

/// systemd's slice nesting: `a-b-c.slice` lives in
/// `a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root. `None` for an
/// invalid name (no `.slice` suffix, a `/`, or an empty dash component).
pub fn expand_slice(slice: &str) -> Option<Vec<String>> {
    let stem = slice.strip_suffix(".slice")?;
    if stem.is_empty() || slice.contains('/') {
        return None;
    }
    if stem == "-" {
        return Some(Vec::new());
    }
    let mut components = Vec::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if part.is_empty() {
            return None;
        }
        prefix.push_str(part);
        components.push(format!("{prefix}.slice"));
        prefix.push('-');
    }
    Some(components)
}

#[cfg(test)]
mod tests;
