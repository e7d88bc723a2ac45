//! A writer for cpio archives in the SVR4 "newc" format (magic `070701`),
//! the format the Linux kernel unpacks as an initramfs.
//!
//! Each member is a 110-byte ASCII header, the NUL-terminated name padded so
//! that header + name is a multiple of 4 bytes, then the data padded to a
//! multiple of 4 bytes. The archive ends with a member named `TRAILER!!!`.
//!
//! The header is thirteen 8-digit hex fields after the magic:
//!
//! | field     | value written here                                  |
//! |-----------|-----------------------------------------------------|
//! | ino       | 1, 2, 3, ... in archive order (0 for the trailer)   |
//! | mode      | file type bits and permission bits                  |
//! | uid, gid  | 0                                                   |
//! | nlink     | 2 for directories, 1 otherwise                      |
//! | mtime     | 0                                                   |
//! | filesize  | length of the data (0 for directories and devices) |
//! | devmajor, devminor   | 0                                        |
//! | rdevmajor, rdevminor | device number of a device node, else 0   |
//! | namesize  | length of the name including its NUL                |
//! | check     | 0                                                   |
//!
//! Nothing here depends on the host: the same entries always give the same
//! bytes.

use std::io::Write;

use crate::Error;

/// The magic that opens every newc header.
pub const MAGIC: &[u8; 6] = b"070701";
/// The size of a newc header (magic + 13 fields of 8 hex digits).
pub const HEADER_LEN: usize = 6 + 13 * 8;
/// The name of the member that ends the archive.
pub const TRAILER_NAME: &str = "TRAILER!!!";

/// File type bits of a directory (`S_IFDIR`).
pub const S_IFDIR: u32 = 0o040_000;
/// File type bits of a regular file (`S_IFREG`).
pub const S_IFREG: u32 = 0o100_000;
/// File type bits of a character device (`S_IFCHR`).
pub const S_IFCHR: u32 = 0o020_000;
/// The bits an [`Entry::mode`] may use: permissions, setuid, setgid, sticky.
pub const PERMISSION_MASK: u32 = 0o7777;

/// What kind of file an [`Entry`] is, with its kind-specific payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file with the given contents.
    File { data: Vec<u8> },
    /// A character device node.
    CharDev { major: u32, minor: u32 },
}

/// One member of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the archive, relative (no leading `/`), `/`-separated.
    pub path: String,
    /// Permission bits only (`0o7777` at most); the type bits come from `kind`.
    pub mode: u32,
    /// The kind of file.
    pub kind: EntryKind,
}

impl Entry {
    /// A directory entry.
    pub fn dir(path: impl Into<String>, mode: u32) -> Self {
        Self {
            path: path.into(),
            mode,
            kind: EntryKind::Dir,
        }
    }

    /// A regular-file entry.
    pub fn file(path: impl Into<String>, mode: u32, data: Vec<u8>) -> Self {
        Self {
            path: path.into(),
            mode,
            kind: EntryKind::File { data },
        }
    }

    /// A character-device entry.
    pub fn char_dev(path: impl Into<String>, mode: u32, major: u32, minor: u32) -> Self {
        Self {
            path: path.into(),
            mode,
            kind: EntryKind::CharDev { major, minor },
        }
    }

    /// Whether this entry is a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, EntryKind::Dir)
    }

    /// The header fields of this entry, without `ino` and `namesize`.
    fn fields(&self) -> Result<Fields<'_>, Error> {
        self.validate()?;
        let (type_bits, nlink, data, rdev): (u32, u32, &[u8], (u32, u32)) = match &self.kind {
            EntryKind::Dir => (S_IFDIR, 2, &[], (0, 0)),
            EntryKind::File { data } => (S_IFREG, 1, data, (0, 0)),
            EntryKind::CharDev { major, minor } => (S_IFCHR, 1, &[], (*major, *minor)),
        };
        let filesize = u32::try_from(data.len()).map_err(|_| self.invalid("data exceeds 4 GiB"))?;
        Ok(Fields {
            mode: type_bits | self.mode,
            nlink,
            filesize,
            rdev,
            data,
        })
    }

    fn validate(&self) -> Result<(), Error> {
        if self.path.is_empty() {
            return Err(self.invalid("empty path"));
        }
        if self.path.contains('\0') {
            return Err(self.invalid("path contains a NUL byte"));
        }
        if self.path.starts_with('/') {
            return Err(self.invalid("path must be relative"));
        }
        if self.path == TRAILER_NAME {
            return Err(self.invalid("path is the archive trailer name"));
        }
        if self.mode & !PERMISSION_MASK != 0 {
            return Err(self.invalid(&format!(
                "mode {:o} has bits outside {PERMISSION_MASK:o}",
                self.mode
            )));
        }
        Ok(())
    }

    fn invalid(&self, reason: &str) -> Error {
        Error::InvalidEntry {
            path: self.path.clone(),
            reason: reason.to_owned(),
        }
    }
}

struct Fields<'a> {
    mode: u32,
    nlink: u32,
    filesize: u32,
    rdev: (u32, u32),
    data: &'a [u8],
}

/// A [`Write`] wrapper that counts bytes, for computing padding.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Counting<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.inner.write_all(bytes).map_err(Error::Write)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Writes NUL bytes up to the next multiple of 4.
    fn pad4(&mut self) -> Result<(), Error> {
        let pad = padding(self.written);
        self.put(&[0u8; 3][..pad])
    }

    fn header(
        &mut self,
        ino: u32,
        mode: u32,
        nlink: u32,
        filesize: u32,
        rdev: (u32, u32),
        name: &str,
    ) -> Result<(), Error> {
        // namesize counts the terminating NUL. Names are far below 4 GiB in
        // practice; refuse rather than truncate if one is not.
        let namesize = u32::try_from(name.len() + 1).map_err(|_| Error::InvalidEntry {
            path: name.to_owned(),
            reason: "name exceeds 4 GiB".to_owned(),
        })?;
        let (uid, gid, mtime, devmajor, devminor, check) = (0, 0, 0, 0, 0, 0);
        let fields = [
            ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdev.0, rdev.1,
            namesize, check,
        ];
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        for value in fields {
            header.extend_from_slice(format!("{value:08x}").as_bytes());
        }
        debug_assert_eq!(header.len(), HEADER_LEN);
        self.put(&header)?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad4()
    }
}

/// The number of NUL bytes that bring `len` up to a multiple of 4.
pub fn padding(len: u64) -> usize {
    // The result is in 0..4, so the cast is lossless.
    ((4 - len % 4) % 4) as usize
}

/// Writes `entries` as a newc archive, in the given order, followed by the
/// trailer. Inode numbers are assigned 1, 2, 3, ... in that order.
///
/// The order matters to the consumer: a directory must come before anything
/// inside it. [`crate::layout`] produces a suitable order.
///
/// Entries are validated as they are written, so on error the writer may
/// have received a partial archive.
pub fn write_archive<W: Write>(entries: &[Entry], writer: W) -> Result<(), Error> {
    let mut out = Counting {
        inner: writer,
        written: 0,
    };
    for (index, entry) in entries.iter().enumerate() {
        let ino = u32::try_from(index + 1).map_err(|_| entry.invalid("too many entries"))?;
        let fields = entry.fields()?;
        out.header(
            ino,
            fields.mode,
            fields.nlink,
            fields.filesize,
            fields.rdev,
            &entry.path,
        )?;
        out.put(fields.data)?;
        out.pad4()?;
    }
    out.header(0, 0, 1, 0, (0, 0), TRAILER_NAME)?;
    out.inner.flush().map_err(Error::Write)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::parse_newc;

    fn archive(entries: &[Entry]) -> Vec<u8> {
        let mut out = Vec::new();
        match write_archive(entries, &mut out) {
            Ok(()) => out,
            Err(e) => panic!("write_archive failed: {e}"),
        }
    }

    /// Concatenates a header from the magic and 13 fields given as 8-digit
    /// hex strings, so the expected bytes below are spelled out by hand.
    fn hdr(fields: [&str; 13]) -> String {
        let mut s = String::from("070701");
        for f in fields {
            assert_eq!(f.len(), 8, "field {f} must be 8 hex digits");
            s.push_str(f);
        }
        s
    }

    #[test]
    fn header_layout_and_alignment_match_hand_computed_bytes() {
        let entries = [
            Entry::dir("d", 0o755),
            Entry::file("d/ab", 0o644, b"hello".to_vec()),
            Entry::char_dev("c", 0o600, 5, 1),
        ];
        let z = "00000000";
        let mut expected = String::new();
        // "d": dir 040755 = 0x41ed, nlink 2, namesize 2.
        // 110 + 2 = 112, already a multiple of 4: no name padding.
        expected += &hdr([
            "00000001", "000041ed", z, z, "00000002", z, z, z, z, z, z, "00000002", z,
        ]);
        expected += "d\0";
        // "d/ab": file 0100644 = 0x81a4, size 5, namesize 5.
        // 110 + 5 = 115 -> 1 NUL of padding; data 5 -> 3 NULs.
        expected += &hdr([
            "00000002", "000081a4", z, z, "00000001", z, "00000005", z, z, z, z, "00000005", z,
        ]);
        expected += "d/ab\0\0";
        expected += "hello\0\0\0";
        // "c": char dev 020600 = 0x2180, rdev 5:1, namesize 2.
        expected += &hdr([
            "00000003", "00002180", z, z, "00000001", z, z, z, z, "00000005", "00000001",
            "00000002", z,
        ]);
        expected += "c\0";
        // Trailer: ino 0, mode 0, nlink 1, namesize 11.
        // 110 + 11 = 121 -> 3 NULs.
        expected += &hdr([z, z, z, z, "00000001", z, z, z, z, z, z, "0000000b", z]);
        expected += "TRAILER!!!\0\0\0\0";

        let got = archive(&entries);
        assert_eq!(
            String::from_utf8_lossy(&got),
            expected,
            "archive bytes differ from the hand-computed layout"
        );
        assert_eq!(got.len(), 112 + 116 + 8 + 112 + 124);
        assert_eq!(got.len() % 4, 0);
    }

    #[test]
    fn empty_archive_is_just_the_trailer() {
        let got = archive(&[]);
        assert_eq!(got.len(), 124);
        assert!(got.starts_with(MAGIC));
        assert_eq!(&got[HEADER_LEN..HEADER_LEN + 11], b"TRAILER!!!\0");
    }

    #[test]
    fn round_trip_through_parser() {
        // Names of every length mod 4, and data of every length mod 4, so
        // each padding amount is exercised.
        let entries = [
            Entry::dir("a", 0o755),
            Entry::dir("a/bb", 0o1777),
            Entry::file("a/bb/ccc", 0o4755, vec![]),
            Entry::file("a/dddd", 0o600, b"x".to_vec()),
            Entry::file("eeeee", 0o644, b"xy".to_vec()),
            Entry::file("ffffff", 0o444, b"xyz".to_vec()),
            Entry::file("g", 0o640, (0u8..=255).collect()),
            Entry::char_dev("h", 0o666, 1, 3),
            Entry::char_dev("ii", 0o620, 136, 0x12345),
        ];
        let bytes = archive(&entries);
        let parsed = match parse_newc(&bytes) {
            Ok(p) => p,
            Err(e) => panic!("parser rejected the archive: {e}"),
        };
        assert_eq!(parsed.len(), entries.len() + 1, "entries + trailer");

        for (i, (entry, member)) in entries.iter().zip(&parsed).enumerate() {
            assert_eq!(member.name, entry.path);
            assert_eq!(member.ino as usize, i + 1, "sequential inodes");
            assert_eq!(member.mode & PERMISSION_MASK, entry.mode, "{}", entry.path);
            assert_eq!((member.uid, member.gid, member.mtime), (0, 0, 0));
            assert_eq!((member.devmajor, member.devminor, member.check), (0, 0, 0));
            match &entry.kind {
                EntryKind::Dir => {
                    assert_eq!(member.mode & 0o170_000, S_IFDIR);
                    assert_eq!(member.nlink, 2);
                    assert!(member.data.is_empty());
                    assert_eq!((member.rdevmajor, member.rdevminor), (0, 0));
                }
                EntryKind::File { data } => {
                    assert_eq!(member.mode & 0o170_000, S_IFREG);
                    assert_eq!(member.nlink, 1);
                    assert_eq!(&member.data, data);
                    assert_eq!((member.rdevmajor, member.rdevminor), (0, 0));
                }
                EntryKind::CharDev { major, minor } => {
                    assert_eq!(member.mode & 0o170_000, S_IFCHR);
                    assert_eq!(member.nlink, 1);
                    assert!(member.data.is_empty());
                    assert_eq!((member.rdevmajor, member.rdevminor), (*major, *minor));
                }
            }
            assert_eq!(member.header_offset % 4, 0, "{} header offset", member.name);
            assert_eq!(member.data_offset % 4, 0, "{} data offset", member.name);
        }
        let trailer = &parsed[entries.len()];
        assert_eq!(trailer.name, TRAILER_NAME);
        assert_eq!(trailer.ino, 0);
        assert_eq!(trailer.header_offset % 4, 0);
        assert_eq!(bytes.len() % 4, 0);
    }

    #[test]
    fn rejects_unrepresentable_entries() {
        let bad = [
            (Entry::dir("", 0o755), "empty path"),
            (Entry::dir("/abs", 0o755), "relative"),
            (Entry::dir("a\0b", 0o755), "NUL"),
            (Entry::dir(TRAILER_NAME, 0o755), "trailer"),
            (Entry::file("f", 0o100_644, vec![]), "mode"),
        ];
        for (entry, needle) in bad {
            let mut out = Vec::new();
            match write_archive(std::slice::from_ref(&entry), &mut out) {
                Ok(()) => panic!("{entry:?} was accepted"),
                Err(e @ Error::InvalidEntry { .. }) => {
                    let msg = e.to_string();
                    assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
                }
                Err(e) => panic!("unexpected error for {entry:?}: {e}"),
            }
        }
    }

    #[test]
    fn writer_errors_are_reported() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let result = write_archive(&[Entry::dir("d", 0o755)], Full);
        assert!(matches!(result, Err(Error::Write(_))), "{result:?}");
    }

    #[test]
    fn padding_values() {
        assert_eq!(
            [0, 1, 2, 3, 4, 5, 110, 121].map(padding),
            [0, 3, 2, 1, 0, 3, 2, 3]
        );
    }
}
