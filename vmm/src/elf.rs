//! Just enough ELF64 to boot a vmlinux by PVH: the loadable segments and the
//! Xen PVH entry note (`XEN_ELFNOTE_PHYS32_ENTRY`). Every field read from the
//! file is bounds-checked; a malformed kernel is an error, never a panic.

use std::fs::File;
use std::os::unix::fs::FileExt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ElfError {
    #[error("not an ELF file")]
    NotElf,
    #[error("not a 64-bit little-endian x86-64 executable")]
    WrongKind,
    #[error("the ELF headers are truncated or out of range")]
    Truncated,
    #[error("segment {index} is malformed: {reason}")]
    BadSegment { index: usize, reason: &'static str },
    #[error("no loadable segments")]
    NoSegments,
    #[error("no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); build the kernel with CONFIG_PVH=y")]
    NoPvhEntry,
    #[error("reading the file failed: {0}")]
    Io(String),
}

/// A PT_LOAD segment: `filesz` bytes from `offset` go to guest `paddr`, and
/// `memsz - filesz` zero bytes follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub offset: u64,
    pub paddr: u64,
    pub filesz: u64,
    pub memsz: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub segments: Vec<Segment>,
    pub pvh_entry: u64,
}

impl Image {
    /// First guest address after the highest segment.
    pub fn end(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.paddr + s.memsz)
            .max()
            .unwrap_or(0)
    }
}

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
const EHDR_BYTES: usize = 64;
const PHDR_BYTES: usize = 56;
const MAX_PHDRS: usize = 128;
const MAX_NOTE_BYTES: u64 = 1 << 20;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

fn read(file: &File, offset: u64, len: usize, file_len: u64) -> Result<Vec<u8>, ElfError> {
    if offset
        .checked_add(len as u64)
        .is_none_or(|end| end > file_len)
    {
        return Err(ElfError::Truncated);
    }
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)
        .map_err(|e| ElfError::Io(e.to_string()))?;
    Ok(buf)
}

/// Finds the PVH entry in a note segment's bytes.
pub fn pvh_entry_in_notes(notes: &[u8]) -> Option<u64> {
    let align4 = |n: usize| n.checked_add(3).map(|v| v & !3);
    let mut at = 0usize;
    while at.checked_add(12)? <= notes.len() {
        let namesz = u32_at(notes, at) as usize;
        let descsz = u32_at(notes, at + 4) as usize;
        let kind = u32_at(notes, at + 8);
        let name_at = at + 12;
        let desc_at = name_at.checked_add(align4(namesz)?)?;
        let next = desc_at.checked_add(align4(descsz)?)?;
        if next > notes.len() {
            return None;
        }
        let name = &notes[name_at..name_at + namesz];
        if kind == XEN_ELFNOTE_PHYS32_ENTRY && name.strip_suffix(&[0]).unwrap_or(name) == b"Xen" {
            return match descsz {
                4 => Some(u64::from(u32_at(notes, desc_at))),
                8 => Some(u64_at(notes, desc_at)),
                _ => None,
            };
        }
        at = next;
    }
    None
}

/// Reads the ELF and program headers and the PVH note.
pub fn parse(file: &File) -> Result<Image, ElfError> {
    let file_len = file
        .metadata()
        .map_err(|e| ElfError::Io(e.to_string()))?
        .len();
    if file_len < EHDR_BYTES as u64 {
        return Err(ElfError::NotElf);
    }
    let ehdr = read(file, 0, EHDR_BYTES, file_len)?;
    if ehdr[..4] != *b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    // ELFCLASS64, ELFDATA2LSB, EM_X86_64.
    if ehdr[4] != 2 || ehdr[5] != 1 || u16_at(&ehdr, 18) != 62 {
        return Err(ElfError::WrongKind);
    }
    let phoff = u64_at(&ehdr, 32);
    let phentsize = u16_at(&ehdr, 54) as usize;
    let phnum = u16_at(&ehdr, 56) as usize;
    if phentsize != PHDR_BYTES || phnum > MAX_PHDRS {
        return Err(ElfError::Truncated);
    }
    let phdrs = read(file, phoff, phnum * PHDR_BYTES, file_len)?;
    let mut segments = Vec::new();
    let mut pvh_entry = None;
    for index in 0..phnum {
        let p = &phdrs[index * PHDR_BYTES..(index + 1) * PHDR_BYTES];
        let (kind, offset, paddr) = (u32_at(p, 0), u64_at(p, 8), u64_at(p, 24));
        let (filesz, memsz) = (u64_at(p, 32), u64_at(p, 40));
        let bad = |reason| ElfError::BadSegment { index, reason };
        match kind {
            PT_LOAD => {
                if filesz > memsz {
                    return Err(bad("file size exceeds memory size"));
                }
                if offset.checked_add(filesz).is_none_or(|e| e > file_len) {
                    return Err(bad("extends past the end of the file"));
                }
                if paddr.checked_add(memsz).is_none() {
                    return Err(bad("address overflows"));
                }
                segments.push(Segment {
                    offset,
                    paddr,
                    filesz,
                    memsz,
                });
            }
            PT_NOTE if pvh_entry.is_none() && filesz <= MAX_NOTE_BYTES => {
                let notes = read(file, offset, filesz as usize, file_len)?;
                pvh_entry = pvh_entry_in_notes(&notes);
            }
            _ => {}
        }
    }
    if segments.is_empty() {
        return Err(ElfError::NoSegments);
    }
    Ok(Image {
        segments,
        pvh_entry: pvh_entry.ok_or(ElfError::NoPvhEntry)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut n = Vec::new();
        n.extend_from_slice(&(name.len() as u32).to_le_bytes());
        n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        n.extend_from_slice(&kind.to_le_bytes());
        n.extend_from_slice(name);
        n.resize(n.len().next_multiple_of(4), 0);
        n.extend_from_slice(desc);
        n.resize(n.len().next_multiple_of(4), 0);
        n
    }

    /// An ELF with one PT_LOAD (0x100 bytes at 0x1000 → 0x100_0000) and one note.
    fn elf(notes: &[u8], filesz: u64, memsz: u64) -> Vec<u8> {
        let mut f = vec![0u8; 0x1100];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[18..20].copy_from_slice(&62u16.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&2u16.to_le_bytes());
        let mut ph = |i: usize, kind: u32, off: u64, paddr: u64, fs: u64, ms: u64| {
            let p = 64 + i * 56;
            f[p..p + 4].copy_from_slice(&kind.to_le_bytes());
            f[p + 8..p + 16].copy_from_slice(&off.to_le_bytes());
            f[p + 24..p + 32].copy_from_slice(&paddr.to_le_bytes());
            f[p + 32..p + 40].copy_from_slice(&fs.to_le_bytes());
            f[p + 40..p + 48].copy_from_slice(&ms.to_le_bytes());
        };
        ph(0, PT_LOAD, 0x1000, 0x100_0000, filesz, memsz);
        ph(1, PT_NOTE, 0x200, 0, notes.len() as u64, notes.len() as u64);
        f[0x200..0x200 + notes.len()].copy_from_slice(notes);
        f
    }

    fn parse_bytes(bytes: &[u8]) -> Result<Image, ElfError> {
        let mut file = tempfile();
        file.write_all(bytes).unwrap();
        parse(&file)
    }

    fn tempfile() -> File {
        let name = std::ffi::CString::new("elf-test").unwrap();
        // SAFETY: valid NUL-terminated name and flags.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
        assert!(fd >= 0);
        // SAFETY: fd is a fresh descriptor owned by nobody else.
        unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
    }

    #[test]
    fn finds_segments_and_the_pvh_entry() {
        let notes = [
            note(b"GNU\0", 3, b"abcd"),
            note(b"Xen\0", 18, &0x100_0abcu32.to_le_bytes()),
        ]
        .concat();
        let img = parse_bytes(&elf(&notes, 0x100, 0x300)).unwrap();
        assert_eq!(img.pvh_entry, 0x100_0abc);
        assert_eq!(
            img.segments,
            vec![Segment {
                offset: 0x1000,
                paddr: 0x100_0000,
                filesz: 0x100,
                memsz: 0x300
            }]
        );
        assert_eq!(img.end(), 0x100_0300);
    }

    #[test]
    fn rejects_what_cannot_boot() {
        let pvh = note(b"Xen\0", 18, &8u64.to_le_bytes());
        assert_eq!(parse_bytes(b"#!/bin/sh\n").unwrap_err(), ElfError::NotElf);
        assert_eq!(
            parse_bytes(&elf(&note(b"Xen\0", 17, b"xxxx"), 0x100, 0x100)).unwrap_err(),
            ElfError::NoPvhEntry
        );
        assert!(matches!(
            parse_bytes(&elf(&pvh, 0x200, 0x100)),
            Err(ElfError::BadSegment { .. })
        ));
        assert!(matches!(
            parse_bytes(&elf(&pvh, 0x10_0000, 0x10_0000)),
            Err(ElfError::BadSegment { .. })
        ));
        let mut wrong = elf(&pvh, 0x100, 0x100);
        wrong[18] = 183; // aarch64
        assert_eq!(parse_bytes(&wrong).unwrap_err(), ElfError::WrongKind);
        let mut many = elf(&pvh, 0x100, 0x100);
        many[56..58].copy_from_slice(&1000u16.to_le_bytes());
        assert_eq!(parse_bytes(&many).unwrap_err(), ElfError::Truncated);
    }

    #[test]
    fn hostile_notes_do_not_panic() {
        assert_eq!(pvh_entry_in_notes(&[0xff; 12]), None);
        let mut n = note(b"Xen\0", 18, &[1, 2, 3]);
        assert_eq!(pvh_entry_in_notes(&n), None);
        n.truncate(14);
        assert_eq!(pvh_entry_in_notes(&n), None);
        for len in 0..40 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
            let _ = pvh_entry_in_notes(&junk);
        }
    }
}
