//! Builds hull's guest initramfs: a cpio archive in newc format holding the
//! hull agent as `/init`, a few mount points, the `/dev/console` and
//! `/dev/null` device nodes, and any extra files asked for.
//!
//! - [`newc`] writes newc archives from a list of [`newc::Entry`] values.
//! - [`layout`] decides what the image holds and in which order.
//! - [`output`] writes the archive to disk atomically.
//! - [`cli`] parses the `hull-rootfs-builder` command line.
//!
//! The output is reproducible: it depends only on the contents of the input
//! files, the guest paths and the modes asked for.

pub mod cli;
mod error;
pub mod layout;
pub mod newc;
pub mod output;
#[cfg(test)]
mod test_support;

pub use error::Error;

/// Builds the image described by `options` and writes it to
/// `options.output`.
pub fn build_image(options: &cli::Options) -> Result<(), Error> {
    let entries = layout::load_entries(&options.agent, &options.files)?;
    output::write_atomically(&options.output, &entries)
}

#[cfg(test)]
mod tests {
    use std::fs::{self, File, FileTimes, Permissions};
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::layout::ExtraFile;
    use crate::newc::{S_IFCHR, S_IFDIR, S_IFREG};
    use crate::test_support::{parse_newc, Member, TempDir};

    /// The names of the image built by [`build_in`], in archive order.
    const EXPECTED_NAMES: [&str; 13] = [
        "dev",
        "dev/console",
        "dev/null",
        "dev/pts",
        "etc",
        "etc/hull",
        "etc/hull/hull.conf",
        "init",
        "proc",
        "run",
        "sys",
        "tmp",
        "TRAILER!!!",
    ];

    /// Writes the agent and one extra file into `dir` with the given mtime
    /// and permission bits, builds an image, and returns its bytes.
    fn build_in(dir: &TempDir, mtime: SystemTime, perm: u32) -> Vec<u8> {
        let agent = dir.write("hull-agent", b"\x7fELF\x02\x01\x01 pretend agent");
        let conf = dir.write("hull.conf", b"vsock_port = 1024\n");
        for path in [&agent, &conf] {
            let set = File::options().write(true).open(path).and_then(|f| {
                f.set_times(FileTimes::new().set_modified(mtime).set_accessed(mtime))?;
                f.set_permissions(Permissions::from_mode(perm))
            });
            if let Err(e) = set {
                panic!("cannot set times/permissions of {}: {e}", path.display());
            }
        }
        let output = dir.path().join("initramfs.cpio");
        let options = cli::Options {
            agent,
            output: output.clone(),
            files: vec![ExtraFile {
                guest_path: "etc/hull/hull.conf".to_owned(),
                host_path: conf,
                mode: 0o640,
            }],
        };
        if let Err(e) = build_image(&options) {
            panic!("build_image failed: {e}");
        }
        match fs::read(&output) {
            Ok(bytes) => bytes,
            Err(e) => panic!("cannot read {}: {e}", output.display()),
        }
    }

    fn member<'a>(members: &'a [Member], name: &str) -> &'a Member {
        match members.iter().find(|m| m.name == name) {
            Some(m) => m,
            None => panic!("{name} not in archive"),
        }
    }

    #[test]
    fn full_image_round_trip() {
        let dir = TempDir::new("image");
        let bytes = build_in(&dir, SystemTime::now(), 0o755);
        let members = match parse_newc(&bytes) {
            Ok(m) => m,
            Err(e) => panic!("parser rejected the image: {e}"),
        };
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, EXPECTED_NAMES);

        let console = member(&members, "dev/console");
        assert_eq!(console.mode, S_IFCHR | 0o600);
        assert_eq!((console.rdevmajor, console.rdevminor), (5, 1));
        let null = member(&members, "dev/null");
        assert_eq!(null.mode, S_IFCHR | 0o666);
        assert_eq!((null.rdevmajor, null.rdevminor), (1, 3));
        let init = member(&members, "init");
        assert_eq!(init.mode, S_IFREG | 0o755);
        assert_eq!(init.data, b"\x7fELF\x02\x01\x01 pretend agent");
        let conf = member(&members, "etc/hull/hull.conf");
        assert_eq!(conf.mode, S_IFREG | 0o640, "mode from --file, not the host");
        assert_eq!(conf.data, b"vsock_port = 1024\n");
        assert_eq!(member(&members, "etc/hull").mode, S_IFDIR | 0o755);
        assert_eq!(member(&members, "tmp").mode, S_IFDIR | 0o1777);

        for (i, m) in members.iter().enumerate() {
            let is_trailer = i + 1 == members.len();
            assert_eq!(
                m.ino as usize,
                if is_trailer { 0 } else { i + 1 },
                "{}",
                m.name
            );
            assert_eq!((m.uid, m.gid, m.mtime, m.check), (0, 0, 0, 0), "{}", m.name);
            assert_eq!((m.devmajor, m.devminor), (0, 0), "{}", m.name);
            let expected_nlink = if m.mode & 0o170_000 == S_IFDIR { 2 } else { 1 };
            assert_eq!(m.nlink, expected_nlink, "{}", m.name);
            if m.mode & 0o170_000 != S_IFCHR {
                assert_eq!((m.rdevmajor, m.rdevminor), (0, 0), "{}", m.name);
            }
            assert_eq!(m.header_offset % 4, 0, "{}", m.name);
            assert_eq!(m.data_offset % 4, 0, "{}", m.name);
        }
    }

    #[test]
    fn reproducible_across_mtimes_permissions_and_inodes() {
        let first = TempDir::new("repro-a");
        let second = TempDir::new("repro-b");
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let a = build_in(&first, old, 0o700);
        let b = build_in(&second, SystemTime::now(), 0o644);
        assert!(!a.is_empty());
        assert!(a == b, "images differ although only host metadata differs");
        // And again in place, replacing the existing output.
        let c = build_in(&first, SystemTime::now(), 0o600);
        assert!(a == c, "rebuilding in place changed the image");
    }

    fn find_cpio() -> Option<PathBuf> {
        ["/usr/bin/cpio", "/bin/cpio"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    }

    fn run_cpio(cpio: &Path, flags: &str, archive: &Path) -> String {
        let stdin = match File::open(archive) {
            Ok(f) => f,
            Err(e) => panic!("cannot open {}: {e}", archive.display()),
        };
        let out = match Command::new(cpio)
            .arg(flags)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
        {
            Ok(out) => out,
            Err(e) => panic!("cannot run {}: {e}", cpio.display()),
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "cpio {flags} failed: {stderr}");
        assert!(
            !stderr.contains("warning") && !stderr.contains("error"),
            "cpio {flags} complained: {stderr}"
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn system_cpio_reads_the_image() {
        let Some(cpio) = find_cpio() else {
            println!("note: cpio is not installed; skipping the cpio compatibility test");
            return;
        };
        let dir = TempDir::new("cpio");
        build_in(&dir, SystemTime::now(), 0o755);
        let archive = dir.path().join("initramfs.cpio");

        let listing = run_cpio(&cpio, "-it", &archive);
        let names: Vec<&str> = listing.lines().collect();
        assert_eq!(names, EXPECTED_NAMES[..EXPECTED_NAMES.len() - 1]);

        let verbose = run_cpio(&cpio, "-itv", &archive);
        let line_for = |name: &str| -> String {
            match verbose
                .lines()
                .find(|l| l.split_whitespace().last() == Some(name))
            {
                Some(l) => l.to_owned(),
                None => panic!("{name} not in cpio -itv output:\n{verbose}"),
            }
        };
        let console = line_for("dev/console");
        assert!(console.starts_with("crw-------"), "{console}");
        let fields: Vec<&str> = console.split_whitespace().collect();
        assert!(
            fields.windows(2).any(|w| w == ["5,", "1"]),
            "dev/console should be 5, 1: {console}"
        );
        let null = line_for("dev/null");
        assert!(null.starts_with("crw-rw-rw-"), "{null}");
        assert!(line_for("tmp").starts_with("drwxrwxrwt"));
        assert!(line_for("init").starts_with("-rwxr-xr-x"));
        assert!(line_for("etc/hull/hull.conf").starts_with("-rw-r-----"));
    }
}
