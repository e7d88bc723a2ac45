//! Finding the cgroup hierarchies: the `cgroup` (v1) and `cgroup2` mounts in
//! `/proc/self/mountinfo`, and the process's own place in each from
//! `/proc/self/cgroup`.

use std::path::PathBuf;

/// cgroup v1 controllers the kernel knows (the other super options of a
/// `cgroup` mount are flags like `rw`, `xattr`, `noprefix`, `release_agent=…`).
const V1_CONTROLLERS: [&str; 15] = [
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "io",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// `true` for cgroup2.
    pub unified: bool,
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// The cgroup shown at the mount point (mountinfo's root field; `/`
    /// unless a sub-cgroup was bind-mounted or a cgroup namespace is used).
    pub root: String,
    /// v1: its controllers as the kernel names them (`cpu`, `cpuacct`,
    /// `name=systemd`, …); cgroup2: empty.
    pub controllers: Vec<String>,
}

impl Hierarchy {
    /// Whether a `/proc/<pid>/cgroup` line's controller field (`cpu,cpuacct`,
    /// `name=systemd`, or empty for cgroup2) names this hierarchy.
    pub fn matches(&self, field: &str) -> bool {
        if self.unified {
            return field.is_empty();
        }
        field
            .split(',')
            .any(|c| self.controllers.iter().any(|own| own == c))
    }

    /// A short name for messages: `cgroup2` or the controller list.
    pub fn name(&self) -> String {
        if self.unified {
            "cgroup2".into()
        } else {
            self.controllers.join(",")
        }
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, …).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| {
                u8::try_from(d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0'))).ok()
            });
        match octal {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup hierarchies in a mountinfo text. A hierarchy mounted more
/// than once is listed once, at its first mount (as runc picks it).
pub fn parse_mountinfo(text: &str) -> Vec<Hierarchy> {
    let mut found: Vec<Hierarchy> = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(mountpoint), Some(fstype)) =
            (left.get(3), left.get(4), right.first())
        else {
            continue;
        };
        let unified = match *fstype {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let controllers: Vec<String> = if unified {
            Vec::new()
        } else {
            right
                .get(2)
                .unwrap_or(&"")
                .split(',')
                .filter(|o| o.starts_with("name=") || V1_CONTROLLERS.contains(o))
                .map(str::to_string)
                .collect()
        };
        if !unified && controllers.is_empty() {
            continue;
        }
        let hierarchy = Hierarchy {
            unified,
            mountpoint: PathBuf::from(unescape(mountpoint)),
            root: unescape(root),
            controllers,
        };
        let seen = found.iter().any(|h| {
            h.unified == hierarchy.unified
                && (h.unified
                    || h.controllers
                        .iter()
                        .any(|c| hierarchy.controllers.contains(c)))
        });
        if !seen {
            found.push(hierarchy);
        }
    }
    found
}

/// `/proc/<pid>/cgroup`: one `(controllers, path)` per line, the controller
/// field empty for cgroup2.
pub fn parse_proc_cgroup(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some((controllers.to_string(), path.to_string()))
        })
        .collect()
}

/// The process's cgroup in `hierarchy`, from parsed `/proc/self/cgroup`.
pub fn own_cgroup<'a>(hierarchy: &Hierarchy, own: &'a [(String, String)]) -> Option<&'a str> {
    own.iter()
        .find(|(controllers, _)| hierarchy.matches(controllers))
        .map(|(_, path)| path.as_str())
}

#[cfg(test)]
mod tests;
