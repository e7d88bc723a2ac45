//! Resolving a container path inside the container's root before the root
//! is entered: symlinks in the image are followed as the container would
//! see them (an absolute target starts again at the root, `..` stops at the
//! root), so a mount on `/var/run/x` with `/var/run -> /run` lands on the
//! rootfs's `/run/x`, never on the guest's.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use super::{InitError, Result};

/// Symlinks followed at most (as the kernel's MAXSYMLINKS).
const MAX_LINKS: usize = 40;

fn components(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some("..".into()),
        _ => None,
    })
}

/// `root`-relative resolution of `path`; components that do not exist yet
/// are appended as they are.
pub fn resolve(root: &Path, path: &str) -> Result<PathBuf> {
    let mut todo: VecDeque<OsString> = components(Path::new(path)).collect();
    // The resolved components under `root`.
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            done.pop();
            continue;
        }
        let candidate: PathBuf = root.join(done.iter().collect::<PathBuf>()).join(&name);
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(InitError::Msg(format!("too many symlinks in {path}")));
                }
                let target = std::fs::read_link(&candidate)
                    .map_err(|e| InitError::os(format!("readlink {}", candidate.display()), e))?;
                if target.is_absolute() {
                    done.clear();
                }
                for (i, c) in components(&target).enumerate() {
                    todo.insert(i, c);
                }
            }
            _ => done.push(name),
        }
    }
    Ok(root.join(done.iter().collect::<PathBuf>()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_resolve_inside_the_root() {
        let root = std::env::temp_dir().join(format!("hull-securejoin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("run")).unwrap();
        std::fs::create_dir_all(root.join("var")).unwrap();
        symlink("/run", root.join("var/run")).unwrap();
        symlink("../../../../etc", root.join("up")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        assert_eq!(
            resolve(&root, "/var/run/secrets").unwrap(),
            root.join("run/secrets")
        );
        assert_eq!(
            resolve(&root, "/up/passwd").unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(resolve(&root, "/../../proc").unwrap(), root.join("proc"));
        assert_eq!(resolve(&root, "dev/./pts").unwrap(), root.join("dev/pts"));
        assert!(resolve(&root, "/loop/x").is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
