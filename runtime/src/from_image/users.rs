//! `-u`/the image's `User` as numbers, looked up in the rootfs's
//! `/etc/passwd` and `/etc/group` as Docker does: `user`, `uid`,
//! `user:group`, `uid:gid` (and mixed); the user's supplementary groups
//! from `/etc/group`. The files are the image's: opened with
//! `RESOLVE_IN_ROOT` (its symlinks cannot reach the host's) and read up to
//! a bound.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};

use super::FromImageError;

/// Read at most this much of `/etc/passwd` or `/etc/group`.
const MAX_DB_BYTES: u64 = 1 << 20;

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// `path` (absolute, in the image) below `root`, or empty when missing; the
/// image's symlinks stay inside `root` (`RESOLVE_IN_ROOT`), reads bounded.
pub fn read_in_root(root: &Path, path: &str) -> Result<String, FromImageError> {
    let fail = |source: std::io::Error| FromImageError::Rootfs {
        path: root.join(path.trim_start_matches('/')),
        source,
    };
    let dir = std::fs::File::open(root).map_err(fail)?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd: OwnedFd = match nix::fcntl::openat2(&dir, path, how) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return Ok(String::new()),
        Err(e) => return Err(fail(e.into())),
    };
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(MAX_DB_BYTES)
        .read_to_string(&mut text)
        .map_err(fail)?;
    Ok(text)
}

/// `name:x:uid:gid:…` lines: `(name, uid, gid)`.
fn passwd(text: &str) -> impl Iterator<Item = (&str, u32, u32)> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        Some((
            *f.first()?,
            f.get(2)?.parse().ok()?,
            f.get(3)?.parse().ok()?,
        ))
    })
}

/// `name:x:gid:member,member` lines: `(name, gid, members)`.
fn groups(text: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let members = f.get(3).map_or(Vec::new(), |m| {
            m.split(',').filter(|s| !s.is_empty()).collect()
        });
        Some((*f.first()?, f.get(2)?.parse().ok()?, members))
    })
}

/// Resolves `spec` (empty: root) in the image at `root`.
pub fn resolve(root: &Path, spec: &str) -> Result<User, FromImageError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let unknown = |what: &str, name: &str| {
        FromImageError::BadOption(format!("user {spec:?}: no {what} {name:?} in the image"))
    };
    let passwd_text = read_in_root(root, "/etc/passwd")?;
    let entry = match user.parse::<u32>() {
        Ok(uid) => passwd(&passwd_text)
            .find(|(_, u, _)| *u == uid)
            .or(Some(("", uid, 0))),
        Err(_) if user.is_empty() => passwd(&passwd_text)
            .find(|(_, u, _)| *u == 0)
            .or(Some(("", 0, 0))),
        Err(_) => passwd(&passwd_text).find(|(n, _, _)| *n == user),
    };
    let (name, uid, mut gid) = entry.ok_or_else(|| unknown("user", user))?;
    let group_text = read_in_root(root, "/etc/group")?;
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups(&group_text)
                .find(|(n, _, _)| *n == g)
                .map(|(_, id, _)| id)
                .ok_or_else(|| unknown("group", g))?,
        };
    }
    let mut additional_gids: Vec<u32> = match (name.is_empty(), group) {
        (false, None) => groups(&group_text)
            .filter(|(_, id, members)| *id != gid && members.contains(&name))
            .map(|(_, id, _)| id)
            .collect(),
        _ => Vec::new(),
    };
    additional_gids.dedup();
    Ok(User {
        uid,
        gid,
        additional_gids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn image() -> TempDir {
        let dir = TempDir::new("users");
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww:x:33:34::/var/www:/bin/false\nbroken\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nwww:x:34:\nstaff:x:50:www,other\nlog:x:60:www\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn names_and_numbers_resolve_as_docker_does() {
        let img = image();
        let r = |s: &str| resolve(img.path(), s);
        assert_eq!(
            r("").unwrap(),
            User {
                uid: 0,
                gid: 0,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            r("www").unwrap(),
            User {
                uid: 33,
                gid: 34,
                additional_gids: vec![50, 60]
            }
        );
        assert_eq!(r("33").unwrap().gid, 34, "a known uid gets its group");
        assert_eq!(
            r("1000").unwrap(),
            User {
                uid: 1000,
                gid: 0,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            r("www:staff").unwrap(),
            User {
                uid: 33,
                gid: 50,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            r("1000:7").unwrap(),
            User {
                uid: 1000,
                gid: 7,
                additional_gids: vec![]
            }
        );
        assert!(r("nobody")
            .unwrap_err()
            .to_string()
            .contains("no user \"nobody\""));
        assert!(r("www:nogroup")
            .unwrap_err()
            .to_string()
            .contains("no group"));
    }

    #[test]
    fn the_images_symlinks_stay_in_the_image() {
        let img = image();
        std::fs::remove_file(img.path().join("etc/passwd")).unwrap();
        // An absolute link is resolved inside the rootfs, where the target
        // is missing: no user named root at all, uid 0 by number only.
        std::os::unix::fs::symlink("/host-secret", img.path().join("etc/passwd")).unwrap();
        std::fs::write(img.path().join("host-secret"), "evil:x:0:0::/:/bin/sh\n").unwrap();
        assert_eq!(
            resolve(img.path(), "evil").unwrap().uid,
            0,
            "found inside the root"
        );
        std::fs::remove_file(img.path().join("host-secret")).unwrap();
        assert!(resolve(img.path(), "evil").is_err());
    }
}
