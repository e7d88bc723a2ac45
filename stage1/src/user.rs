//! An app's `user` and `group`: numbers as they are, names looked up in the
//! app rootfs's `/etc/passwd` and `/etc/group` (as rkt's stage1 does, never
//! the host's), read as `hull run --image` reads an image's.

use std::path::Path;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("{kind} {name:?} is not in the app's {file}")]
    NotFound {
        kind: &'static str,
        name: String,
        file: &'static str,
    },
}

/// The id of `name` in the colon-separated `file` of `rootfs` (field 2).
fn lookup(
    rootfs: &Path,
    file: &'static str,
    kind: &'static str,
    name: &str,
) -> Result<u32, UserError> {
    if name.is_empty() {
        return Ok(0);
    }
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    // Inside the app's root only: its symlinks cannot reach the host's files.
    let text = runtime::from_image::users::read_in_root(rootfs, file).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut f = line.split(':');
            let entry = f.next()?;
            let id = f.nth(1)?.parse::<u32>().ok()?;
            (entry == name).then_some(id)
        })
        .next()
        .ok_or_else(|| UserError::NotFound {
            kind,
            name: name.into(),
            file,
        })
}

/// uid and gid of an app.
pub fn resolve(rootfs: &Path, user: &str, group: &str) -> Result<(u32, u32), UserError> {
    Ok((
        lookup(rootfs, "/etc/passwd", "user", user)?,
        lookup(rootfs, "/etc/group", "group", group)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\n",
        )
        .unwrap();
        std::fs::write(d.path().join("etc/group"), "root:x:0:\nweb:x:44:www\n").unwrap();
        assert_eq!(resolve(d.path(), "www", "web"), Ok((33, 44)));
        assert_eq!(resolve(d.path(), "1000", "1001"), Ok((1000, 1001)));
        assert_eq!(resolve(d.path(), "", ""), Ok((0, 0)));
        let e = resolve(d.path(), "nobody", "0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "user \"nobody\" is not in the app's /etc/passwd"
        );
    }
}
