//! The layout of hull's guest initramfs: which entries it holds and in what
//! order.
//!
//! Built in:
//!
//! | path          | kind                   | mode  |
//! |---------------|------------------------|-------|
//! | `dev`         | directory              | 0755  |
//! | `dev/console` | char device 5:1        | 0600  |
//! | `dev/null`    | char device 1:3        | 0666  |
//! | `dev/pts`     | directory              | 0755  |
//! | `init`        | the agent binary       | 0755  |
//! | `proc`        | directory              | 0755  |
//! | `run`         | directory              | 0755  |
//! | `sys`         | directory              | 0755  |
//! | `tmp`         | directory              | 01777 |
//!
//! `dev/console` must exist in the archive: the kernel opens it for init's
//! stdin/stdout/stderr before init runs, and a cpio archive lets an
//! unprivileged build create the device node.
//!
//! Extra files (`--file GUEST_PATH=HOST_PATH[:MODE]`) are added with mode
//! [`DEFAULT_FILE_MODE`] unless one is given; missing parent directories are
//! added as [`IMPLICIT_DIR_MODE`] directories. A host file contributes only
//! its contents: never its mtime, owner, inode or permission bits.
//!
//! Entries are sorted by path component by component, so every directory
//! comes before its contents and a directory's subtree is contiguous.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::newc::{Entry, EntryKind, PERMISSION_MASK, TRAILER_NAME};
use crate::Error;

/// Where the agent binary goes; the kernel runs `/init` from an initramfs.
pub const AGENT_PATH: &str = "init";
/// Mode of the agent binary.
pub const AGENT_MODE: u32 = 0o755;
/// Mode of an extra file given without `:MODE`.
pub const DEFAULT_FILE_MODE: u32 = 0o644;
/// Mode of a directory created as the parent of an extra file.
pub const IMPLICIT_DIR_MODE: u32 = 0o755;

/// One `--file GUEST_PATH=HOST_PATH[:MODE]` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    /// Normalised guest path (relative, no empty, `.` or `..` components).
    pub guest_path: String,
    /// The host file whose contents are copied.
    pub host_path: PathBuf,
    /// Permission bits in the image.
    pub mode: u32,
}

impl ExtraFile {
    /// Parses `GUEST_PATH=HOST_PATH[:MODE]`.
    ///
    /// The guest path ends at the first `=`. If the rest contains a `:`, the
    /// text after the last `:` is the mode, in octal (`755`, `0755` or
    /// `0o755`); so a host path that itself contains `:` needs an explicit
    /// mode.
    pub fn parse(arg: &OsStr) -> Result<Self, Error> {
        let spec_error = |reason: String| Error::FileSpec {
            arg: arg.to_string_lossy().into_owned(),
            reason,
        };
        let bytes = arg.as_bytes();
        let Some(eq) = bytes.iter().position(|&b| b == b'=') else {
            return Err(spec_error(
                "expected GUEST_PATH=HOST_PATH[:MODE], found no '='".to_owned(),
            ));
        };
        let guest = std::str::from_utf8(&bytes[..eq])
            .map_err(|_| spec_error("guest path is not valid utf-8".to_owned()))?;
        let rest = &bytes[eq + 1..];
        let (host, mode) = match rest.iter().rposition(|&b| b == b':') {
            None => (rest, DEFAULT_FILE_MODE),
            Some(colon) => {
                let text = String::from_utf8_lossy(&rest[colon + 1..]);
                let mode = parse_mode(&text).ok_or_else(|| {
                    spec_error(format!(
                        "mode '{text}' is not an octal number no greater than 7777 \
                         (a host path containing ':' needs an explicit :MODE)"
                    ))
                })?;
                (&rest[..colon], mode)
            }
        };
        if host.is_empty() {
            return Err(spec_error("host path is empty".to_owned()));
        }
        Ok(Self {
            guest_path: normalize_guest_path(guest)?,
            host_path: PathBuf::from(OsStr::from_bytes(host)),
            mode,
        })
    }
}

/// Parses an octal permission mode: `644`, `0644`, `0o644`, up to `7777`.
pub fn parse_mode(text: &str) -> Option<u32> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return None;
    }
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|mode| mode & !PERMISSION_MASK == 0)
}

/// Turns a user-supplied guest path into the archive's form: leading `/`s
/// removed; empty, `.` and `..` components and NUL bytes rejected.
pub fn normalize_guest_path(raw: &str) -> Result<String, Error> {
    let fail = |reason| Error::GuestPath {
        path: raw.to_owned(),
        reason,
    };
    let path = raw.trim_start_matches('/');
    if path.is_empty() {
        return Err(fail("the path is empty or the root directory"));
    }
    if path.contains('\0') {
        return Err(fail("the path contains a NUL byte"));
    }
    for component in path.split('/') {
        match component {
            "" => {
                return Err(fail(
                    "the path has an empty component ('//' or a trailing '/')",
                ))
            }
            "." | ".." => return Err(fail("the path has a '.' or '..' component")),
            _ => {}
        }
    }
    if path == TRAILER_NAME {
        return Err(fail("the name is reserved for the cpio trailer"));
    }
    Ok(path.to_owned())
}

/// The built-in entries, with `agent` as `/init`, unsorted.
fn builtin_entries(agent: Vec<u8>) -> Vec<Entry> {
    vec![
        Entry::dir("dev", 0o755),
        Entry::char_dev("dev/console", 0o600, 5, 1),
        Entry::char_dev("dev/null", 0o666, 1, 3),
        Entry::dir("dev/pts", 0o755),
        Entry::file(AGENT_PATH, AGENT_MODE, agent),
        Entry::dir("proc", 0o755),
        Entry::dir("run", 0o755),
        Entry::dir("sys", 0o755),
        Entry::dir("tmp", 0o1777),
    ]
}

fn describe(entry: &Entry) -> String {
    let kind = match entry.kind {
        EntryKind::Dir => "directory",
        EntryKind::File { .. } => "file",
        EntryKind::CharDev { .. } => "device node",
    };
    format!("existing {kind} '{}'", entry.path)
}

/// Builds the full, ordered entry list from the agent binary's contents and
/// extra entries (whose paths are normalised here).
///
/// An extra entry may not replace an existing path, nor sit below a
/// non-directory. The result does not depend on the order of `extras`.
pub fn build_entries(agent: Vec<u8>, extras: Vec<Entry>) -> Result<Vec<Entry>, Error> {
    let mut tree: BTreeMap<String, Entry> = builtin_entries(agent)
        .into_iter()
        .map(|entry| (entry.path.clone(), entry))
        .collect();

    for mut extra in extras {
        extra.path = normalize_guest_path(&extra.path)?;
        let conflict = |existing: &Entry| Error::Conflict {
            path: extra.path.clone(),
            existing: describe(existing),
        };
        // Every proper prefix ("a", "a/b" for "a/b/c") must be a directory.
        for (slash, _) in extra.path.match_indices('/') {
            let parent = &extra.path[..slash];
            match tree.get(parent) {
                Some(existing) if !existing.is_dir() => return Err(conflict(existing)),
                Some(_) => {}
                None => {
                    tree.insert(parent.to_owned(), Entry::dir(parent, IMPLICIT_DIR_MODE));
                }
            }
        }
        if let Some(existing) = tree.get(&extra.path) {
            return Err(conflict(existing));
        }
        tree.insert(extra.path.clone(), extra);
    }

    let mut entries: Vec<Entry> = tree.into_values().collect();
    entries.sort_by(|a, b| a.path.split('/').cmp(b.path.split('/')));
    Ok(entries)
}

/// Reads a host input file, which must be a regular file (symlinks to one are
/// followed) small enough for a newc header. `role` names it in errors.
pub fn read_host_file(role: &'static str, path: &Path) -> Result<Vec<u8>, Error> {
    let read_error = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            Error::Missing {
                role,
                path: path.to_owned(),
            }
        } else {
            Error::Read {
                role,
                path: path.to_owned(),
                source,
            }
        }
    };
    let metadata = fs::metadata(path).map_err(read_error)?;
    if !metadata.is_file() {
        return Err(Error::NotRegularFile {
            role,
            path: path.to_owned(),
        });
    }
    let data = fs::read(path).map_err(read_error)?;
    if u32::try_from(data.len()).is_err() {
        return Err(Error::TooLarge {
            role,
            path: path.to_owned(),
            size: data.len() as u64,
        });
    }
    Ok(data)
}

/// Reads the agent binary and the extra files from the host and builds the
/// ordered entry list.
pub fn load_entries(agent: &Path, files: &[ExtraFile]) -> Result<Vec<Entry>, Error> {
    let agent_data = read_host_file("agent binary", agent)?;
    let extras = files
        .iter()
        .map(|file| {
            let data = read_host_file("file", &file.host_path)?;
            Ok(Entry::file(file.guest_path.clone(), file.mode, data))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    build_entries(agent_data, extras)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempDir;

    fn names(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.path.as_str()).collect()
    }

    fn find<'a>(entries: &'a [Entry], path: &str) -> &'a Entry {
        match entries.iter().find(|e| e.path == path) {
            Some(e) => e,
            None => panic!("{path} missing from {:?}", names(entries)),
        }
    }

    fn build(extras: Vec<Entry>) -> Vec<Entry> {
        match build_entries(b"AGENT".to_vec(), extras) {
            Ok(entries) => entries,
            Err(e) => panic!("build_entries failed: {e}"),
        }
    }

    #[test]
    fn builtin_layout() {
        let entries = build(vec![]);
        assert_eq!(
            names(&entries),
            [
                "dev",
                "dev/console",
                "dev/null",
                "dev/pts",
                "init",
                "proc",
                "run",
                "sys",
                "tmp"
            ]
        );
        assert_eq!(
            find(&entries, "dev/console"),
            &Entry::char_dev("dev/console", 0o600, 5, 1)
        );
        assert_eq!(
            find(&entries, "dev/null"),
            &Entry::char_dev("dev/null", 0o666, 1, 3)
        );
        assert_eq!(
            find(&entries, "init"),
            &Entry::file("init", 0o755, b"AGENT".to_vec())
        );
        assert_eq!(find(&entries, "tmp"), &Entry::dir("tmp", 0o1777));
        for dir in ["dev", "dev/pts", "proc", "run", "sys"] {
            assert_eq!(find(&entries, dir), &Entry::dir(dir, 0o755));
        }
    }

    #[test]
    fn extra_files_get_parents_and_sorted_order() {
        let entries = build(vec![
            Entry::file("/etc/ssl/certs/ca.pem", 0o644, b"ca".to_vec()),
            Entry::file("etc-old", 0o600, b"x".to_vec()),
            Entry::file("etc/hosts", 0o644, b"h".to_vec()),
            Entry::file("tmp/seed", 0o400, b"s".to_vec()),
            Entry::file("dev/pts/note", 0o644, vec![]),
        ]);
        assert_eq!(
            names(&entries),
            [
                "dev",
                "dev/console",
                "dev/null",
                "dev/pts",
                "dev/pts/note",
                "etc",
                "etc/hosts",
                "etc/ssl",
                "etc/ssl/certs",
                "etc/ssl/certs/ca.pem",
                "etc-old",
                "init",
                "proc",
                "run",
                "sys",
                "tmp",
                "tmp/seed",
            ]
        );
        for dir in ["etc", "etc/ssl", "etc/ssl/certs"] {
            assert_eq!(find(&entries, dir), &Entry::dir(dir, IMPLICIT_DIR_MODE));
        }
        // An existing directory keeps its own mode.
        assert_eq!(find(&entries, "tmp"), &Entry::dir("tmp", 0o1777));
        assert_eq!(
            find(&entries, "tmp/seed"),
            &Entry::file("tmp/seed", 0o400, b"s".to_vec())
        );
        // Parents before children, checked independently of the expected list.
        for (i, entry) in entries.iter().enumerate() {
            if let Some((parent, _)) = entry.path.rsplit_once('/') {
                let pos = entries.iter().position(|e| e.path == parent);
                assert!(
                    matches!(pos, Some(p) if p < i),
                    "{parent} after {}",
                    entry.path
                );
            }
        }
    }

    #[test]
    fn order_of_extras_does_not_matter() {
        let a = Entry::file("x/a", 0o644, b"a".to_vec());
        let b = Entry::file("x/b/c", 0o644, b"b".to_vec());
        assert_eq!(
            build(vec![a.clone(), b.clone()]),
            build(vec![b.clone(), a.clone()])
        );
    }

    #[test]
    fn conflicts_are_rejected() {
        let cases = [
            (
                vec![Entry::file("init", 0o644, vec![])],
                "existing file 'init'",
            ),
            (
                vec![Entry::file("/tmp", 0o644, vec![])],
                "existing directory 'tmp'",
            ),
            (
                vec![Entry::file("dev/console/x", 0o644, vec![])],
                "existing device node 'dev/console'",
            ),
            (
                vec![Entry::file("init/x", 0o644, vec![])],
                "existing file 'init'",
            ),
            (
                vec![
                    Entry::file("a/b", 0o644, vec![]),
                    Entry::file("a/b", 0o600, vec![]),
                ],
                "existing file 'a/b'",
            ),
            (
                vec![
                    Entry::file("a/b/c", 0o644, vec![]),
                    Entry::file("a/b", 0o600, vec![]),
                ],
                "existing directory 'a/b'",
            ),
        ];
        for (extras, needle) in cases {
            match build_entries(vec![], extras.clone()) {
                Err(e @ Error::Conflict { .. }) => {
                    let msg = e.to_string();
                    assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
                }
                other => panic!("{extras:?}: expected a conflict, got {other:?}"),
            }
        }
    }

    #[test]
    fn guest_paths_are_normalised_or_rejected() {
        assert_eq!(
            normalize_guest_path("/etc/hosts").ok().as_deref(),
            Some("etc/hosts")
        );
        assert_eq!(normalize_guest_path("//a").ok().as_deref(), Some("a"));
        for bad in [
            "",
            "/",
            "a//b",
            "a/",
            "./a",
            "a/../b",
            "..",
            "TRAILER!!!",
            "a\0b",
        ] {
            assert!(
                matches!(normalize_guest_path(bad), Err(Error::GuestPath { .. })),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("755"), Some(0o755));
        assert_eq!(parse_mode("0755"), Some(0o755));
        assert_eq!(parse_mode("0o1777"), Some(0o1777));
        assert_eq!(parse_mode("7777"), Some(0o7777));
        for bad in [
            "", "0o", "8", "10000", "+755", "-1", "rwx", "0x1ff", "000000",
        ] {
            assert_eq!(parse_mode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn file_spec_parsing() {
        let parse = |s: &str| ExtraFile::parse(OsStr::new(s));
        assert_eq!(
            parse("/etc/hosts=/tmp/h").ok(),
            Some(ExtraFile {
                guest_path: "etc/hosts".to_owned(),
                host_path: PathBuf::from("/tmp/h"),
                mode: DEFAULT_FILE_MODE,
            })
        );
        assert_eq!(
            parse("bin/tool=/build/out:0755").ok(),
            Some(ExtraFile {
                guest_path: "bin/tool".to_owned(),
                host_path: PathBuf::from("/build/out"),
                mode: 0o755,
            })
        );
        // '=' in the host path is fine; the guest path ends at the first one.
        // A ':' in the host path works with an explicit mode.
        assert_eq!(
            parse("a=b=c:d:600").ok(),
            Some(ExtraFile {
                guest_path: "a".to_owned(),
                host_path: PathBuf::from("b=c:d"),
                mode: 0o600,
            })
        );

        for (bad, needle) in [
            ("no-equals-sign", "no '='"),
            ("etc/hosts=", "host path is empty"),
            ("etc/hosts=:644", "host path is empty"),
            ("etc/hosts=/h:rw", "mode 'rw'"),
            ("etc/hosts=/h:", "mode ''"),
            ("etc/hosts=/h:17777", "mode '17777'"),
        ] {
            match parse(bad) {
                Err(e @ Error::FileSpec { .. }) => {
                    let msg = e.to_string();
                    assert!(msg.contains(bad), "{msg:?} should quote the argument");
                    assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
                }
                other => panic!("{bad:?}: expected a --file syntax error, got {other:?}"),
            }
        }
        assert!(matches!(parse("=/h"), Err(Error::GuestPath { .. })));
        assert!(matches!(parse("a/../b=/h"), Err(Error::GuestPath { .. })));
    }

    #[test]
    fn host_file_errors() {
        let dir = TempDir::new("host-file-errors");
        let missing = dir.path().join("missing");
        match read_host_file("agent binary", &missing) {
            Err(e @ Error::Missing { .. }) => {
                let msg = e.to_string();
                assert_eq!(
                    msg,
                    format!("agent binary {} does not exist", missing.display())
                );
            }
            other => panic!("expected Missing, got {other:?}"),
        }
        match read_host_file("file", dir.path()) {
            Err(e @ Error::NotRegularFile { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
                assert!(msg.contains("is not a regular file"), "{msg}");
            }
            other => panic!("expected NotRegularFile, got {other:?}"),
        }
        let file = dir.write("ok", b"contents");
        assert_eq!(
            read_host_file("file", &file).ok(),
            Some(b"contents".to_vec())
        );
    }

    #[test]
    fn load_entries_reads_host_files() {
        let dir = TempDir::new("load-entries");
        let agent = dir.write("agent", b"\x7fELF agent");
        let conf = dir.write("conf", b"key=value\n");
        let entries = match load_entries(
            &agent,
            &[ExtraFile {
                guest_path: "etc/hull.conf".to_owned(),
                host_path: conf,
                mode: 0o600,
            }],
        ) {
            Ok(entries) => entries,
            Err(e) => panic!("load_entries failed: {e}"),
        };
        assert_eq!(
            find(&entries, "init"),
            &Entry::file("init", 0o755, b"\x7fELF agent".to_vec())
        );
        assert_eq!(
            find(&entries, "etc/hull.conf"),
            &Entry::file("etc/hull.conf", 0o600, b"key=value\n".to_vec())
        );
        assert_eq!(find(&entries, "etc"), &Entry::dir("etc", 0o755));
    }
}
