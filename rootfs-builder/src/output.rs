//! Writing the archive to its destination atomically.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use crate::newc::{write_archive, Entry};
use crate::Error;

/// Writes `entries` as a newc archive to `path`.
///
/// The archive goes to a new temporary file in the same directory, which is
/// synced and then renamed over `path`; readers see either the old file or
/// the complete new one. On failure the temporary file is removed.
pub fn write_atomically(path: &Path, entries: &[Entry]) -> Result<(), Error> {
    let output_error = |source: io::Error| Error::Output {
        path: path.to_owned(),
        source,
    };
    let name = path.file_name().ok_or_else(|| {
        output_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the output path has no file name",
        ))
    })?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };

    let (tmp_path, file) = create_temp(dir, name).map_err(output_error)?;
    let result = fill_and_rename(entries, file, &tmp_path, path).map_err(|e| match e {
        Error::Write(source) => output_error(source),
        other => other,
    });
    if result.is_err() {
        // Best effort: the original error is the one worth reporting.
        let _ = fs::remove_file(&tmp_path);
        return result;
    }
    // Make the rename itself durable.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(output_error)
}

fn fill_and_rename(
    entries: &[Entry],
    file: File,
    tmp_path: &Path,
    path: &Path,
) -> Result<(), Error> {
    let mut writer = BufWriter::new(file);
    write_archive(entries, &mut writer)?;
    let file = writer
        .into_inner()
        .map_err(|e| Error::Write(e.into_error()))?;
    file.sync_all().map_err(Error::Write)?;
    drop(file);
    fs::rename(tmp_path, path).map_err(Error::Write)
}

/// Creates `.NAME.PID.N.tmp` in `dir`, never reusing an existing file.
fn create_temp(dir: &Path, name: &OsStr) -> io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    let mut attempt = 0u32;
    loop {
        let mut tmp_name = OsStr::new(".").to_owned();
        tmp_name.push(name);
        tmp_name.push(format!(".{pid}.{attempt}.tmp"));
        let tmp_path = dir.join(tmp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
        {
            Ok(file) => return Ok((tmp_path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempDir;

    fn dir_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = match fs::read_dir(dir) {
            Ok(rd) => rd
                .map(|e| match e {
                    Ok(e) => e.file_name().to_string_lossy().into_owned(),
                    Err(e) => panic!("read_dir entry: {e}"),
                })
                .collect(),
            Err(e) => panic!("read_dir {}: {e}", dir.display()),
        };
        names.sort();
        names
    }

    #[test]
    fn replaces_output_and_leaves_no_temp_file() {
        let dir = TempDir::new("atomic");
        let out = dir.write("initramfs.cpio", b"old contents");
        let entries = [Entry::dir("d", 0o755)];
        if let Err(e) = write_atomically(&out, &entries) {
            panic!("write_atomically failed: {e}");
        }
        let mut expected = Vec::new();
        if let Err(e) = write_archive(&entries, &mut expected) {
            panic!("write_archive failed: {e}");
        }
        assert_eq!(fs::read(&out).ok(), Some(expected));
        assert_eq!(dir_names(dir.path()), ["initramfs.cpio"]);
    }

    #[test]
    fn invalid_entry_leaves_existing_output_alone() {
        let dir = TempDir::new("atomic-fail");
        let out = dir.write("initramfs.cpio", b"old contents");
        let result = write_atomically(&out, &[Entry::dir("/abs", 0o755)]);
        assert!(
            matches!(result, Err(Error::InvalidEntry { .. })),
            "{result:?}"
        );
        assert_eq!(fs::read(&out).ok(), Some(b"old contents".to_vec()));
        assert_eq!(dir_names(dir.path()), ["initramfs.cpio"]);
    }

    #[test]
    fn missing_output_directory_names_the_path() {
        let dir = TempDir::new("atomic-nodir");
        let out = dir.path().join("no/such/dir/initramfs.cpio");
        match write_atomically(&out, &[]) {
            Err(e @ Error::Output { .. }) => {
                assert_eq!(
                    e.to_string(),
                    format!("cannot write output {}", out.display())
                );
            }
            other => panic!("expected an output error, got {other:?}"),
        }
    }
}
