//! Test helpers: a small, strict newc parser and a self-removing temporary
//! directory. Independent of the writer, so round trips test something.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// One parsed archive member (the trailer included).
#[derive(Debug)]
pub struct Member {
    pub name: String,
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub devmajor: u32,
    pub devminor: u32,
    pub rdevmajor: u32,
    pub rdevminor: u32,
    pub check: u32,
    pub data: Vec<u8>,
    /// Offset of the header in the archive.
    pub header_offset: usize,
    /// Offset of the data in the archive.
    pub data_offset: usize,
}

fn take<'a>(bytes: &'a [u8], pos: &mut usize, len: usize) -> Result<&'a [u8], String> {
    let end = pos
        .checked_add(len)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| format!("truncated archive: need {len} bytes at offset {pos}"))?;
    let slice = &bytes[*pos..end];
    *pos = end;
    Ok(slice)
}

fn skip_padding(bytes: &[u8], pos: &mut usize) -> Result<(), String> {
    let pad = (4 - *pos % 4) % 4;
    let at = *pos;
    if take(bytes, pos, pad)?.iter().any(|&b| b != 0) {
        return Err(format!("non-zero padding at offset {at}"));
    }
    Ok(())
}

fn hex_field(bytes: &[u8], pos: &mut usize) -> Result<u32, String> {
    let at = *pos;
    let raw = take(bytes, pos, 8)?;
    let text = std::str::from_utf8(raw).map_err(|_| format!("non-ascii field at {at}"))?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("bad hex field {text:?} at {at}"));
    }
    u32::from_str_radix(text, 16).map_err(|e| format!("bad hex field {text:?} at {at}: {e}"))
}

/// Parses a whole newc archive, up to and including the trailer, and checks
/// that nothing but the end of input follows it.
pub fn parse_newc(bytes: &[u8]) -> Result<Vec<Member>, String> {
    let mut members = Vec::new();
    let mut pos = 0;
    loop {
        let header_offset = pos;
        if header_offset % 4 != 0 {
            return Err(format!("header at unaligned offset {header_offset}"));
        }
        if take(bytes, &mut pos, 6)? != b"070701" {
            return Err(format!("bad magic at offset {header_offset}"));
        }
        let mut f = [0u32; 13];
        for field in &mut f {
            *field = hex_field(bytes, &mut pos)?;
        }
        let [ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check] =
            f;
        let raw_name = take(bytes, &mut pos, namesize as usize)?;
        let Some((&0, name)) = raw_name.split_last() else {
            return Err(format!("name at {header_offset} is not NUL-terminated"));
        };
        if name.contains(&0) {
            return Err(format!("name at {header_offset} has an embedded NUL"));
        }
        let name = String::from_utf8(name.to_vec()).map_err(|e| e.to_string())?;
        skip_padding(bytes, &mut pos)?;
        let data_offset = pos;
        let data = take(bytes, &mut pos, filesize as usize)?.to_vec();
        skip_padding(bytes, &mut pos)?;
        let is_trailer = name == "TRAILER!!!";
        members.push(Member {
            name,
            ino,
            mode,
            uid,
            gid,
            nlink,
            mtime,
            devmajor,
            devminor,
            rdevmajor,
            rdevminor,
            check,
            data,
            header_offset,
            data_offset,
        });
        if is_trailer {
            if pos != bytes.len() {
                return Err(format!("{} bytes after the trailer", bytes.len() - pos));
            }
            return Ok(members);
        }
    }
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "hull-rootfs-builder-test-{}-{n}-{tag}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        if let Err(e) = fs::create_dir_all(&path) {
            panic!("cannot create {}: {e}", path.display());
        }
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes a file in the directory and returns its path.
    pub fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        if let Err(e) = fs::write(&path, contents) {
            panic!("cannot write {}: {e}", path.display());
        }
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
