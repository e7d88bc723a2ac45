//! Loading what the guest boots: the kernel (an ELF vmlinux with a PVH entry
//! note), the initramfs and the command line.

use std::fs::File;
use std::path::{Path, PathBuf};

use std::io::{Seek, SeekFrom};

use linux_loader::cmdline::Cmdline;
use linux_loader::loader::load_cmdline;
use vm_memory::{Address, Bytes, GuestAddress, GuestMemory, GuestMemoryMmap};

use crate::elf::{self, ElfError};

use crate::arch::layout::{
    CMDLINE_ADDR, CMDLINE_MAX_BYTES, HIGH_RAM_ADDR, INITRD_MAX_END, MMIO_GAP_START, PAGE_SIZE_BYTES,
};

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("cannot open kernel {path}: {source}")]
    OpenKernel {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot load kernel {path} (it must be an uncompressed ELF vmlinux): {source}")]
    LoadKernel { path: PathBuf, source: ElfError },
    #[error("kernel {path}: segment at {addr:#x}+{len:#x} is outside guest RAM above 1 MiB")]
    SegmentOutsideRam { path: PathBuf, addr: u64, len: u64 },
    #[error("cannot open initramfs {path}: {source}")]
    OpenInitrd {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("initramfs {path} is empty")]
    EmptyInitrd { path: PathBuf },
    #[error("initramfs {path} ({size} bytes) does not fit in guest memory above the kernel")]
    InitrdTooLarge { path: PathBuf, size: u64 },
    #[error("cannot place {path} in guest memory: {reason}")]
    Place { path: PathBuf, reason: String },
    #[error("invalid kernel command line: {0}")]
    Cmdline(linux_loader::cmdline::Error),
    #[error("cannot write the kernel command line: {0}")]
    WriteCmdline(linux_loader::loader::Error),
}

/// Where the loaded kernel sits and where it starts.
#[derive(Debug, Clone, Copy)]
pub struct LoadedKernel {
    pub entry: u64,
    pub end: u64,
}

/// Copies `len` bytes of `file` from `offset` to guest `addr`.
///
/// Mapping the file copy-on-write over guest RAM instead (which made native
/// start-up ~6x faster) was tried and reverted: guests in the nested test host
/// then intermittently stalled or crashed in early boot.
fn place(
    mem: &GuestMemoryMmap,
    path: &Path,
    file: &File,
    offset: u64,
    addr: u64,
    len: u64,
) -> Result<(), BootError> {
    let err = |reason: String| BootError::Place {
        path: path.to_owned(),
        reason,
    };
    let mut reader = file.try_clone().map_err(|e| err(e.to_string()))?;
    reader
        .seek(SeekFrom::Start(offset))
        .map_err(|e| err(e.to_string()))?;
    mem.read_exact_volatile_from(GuestAddress(addr), &mut reader, len as usize)
        .map_err(|e| err(e.to_string()))
}

/// Loads the vmlinux ELF segments and finds its PVH entry.
pub fn load_kernel(mem: &GuestMemoryMmap, path: &Path) -> Result<LoadedKernel, BootError> {
    let file = File::open(path).map_err(|source| BootError::OpenKernel {
        path: path.to_owned(),
        source,
    })?;
    let image = elf::parse(&file).map_err(|source| BootError::LoadKernel {
        path: path.to_owned(),
        source,
    })?;
    let mut segments = image.segments.clone();
    segments.sort_by_key(|s| s.paddr);
    let ram_end = mem.last_addr().raw_value() + 1;
    for s in &segments {
        let in_ram = s.paddr >= HIGH_RAM_ADDR
            && s.paddr + s.memsz <= ram_end.min(MMIO_GAP_START)
            && mem.address_in_range(GuestAddress(s.paddr));
        if !in_ram {
            return Err(BootError::SegmentOutsideRam {
                path: path.to_owned(),
                addr: s.paddr,
                len: s.memsz,
            });
        }
        place(mem, path, &file, s.offset, s.paddr, s.filesz)?;
    }
    Ok(LoadedKernel {
        entry: image.pvh_entry,
        end: image.end(),
    })
}

/// Picks the initramfs address: page aligned, as high as possible below the
/// end of low RAM (and 2 GiB), above the kernel.
pub fn initrd_addr(mem_end: u64, kernel_end: u64, size: u64) -> Option<u64> {
    let top = mem_end.min(INITRD_MAX_END).min(MMIO_GAP_START);
    let addr = top.checked_sub(size)? & !(PAGE_SIZE_BYTES - 1);
    (addr >= kernel_end).then_some(addr)
}

/// Places the initramfs in guest memory; returns (address, size).
pub fn load_initrd(
    mem: &GuestMemoryMmap,
    path: &Path,
    kernel_end: u64,
) -> Result<(u64, u64), BootError> {
    let open_err = |source| BootError::OpenInitrd {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(open_err)?;
    let size = file.metadata().map_err(open_err)?.len();
    if size == 0 {
        return Err(BootError::EmptyInitrd {
            path: path.to_owned(),
        });
    }
    let mem_end = mem.last_addr().raw_value() + 1;
    let addr = initrd_addr(mem_end, kernel_end, size).ok_or_else(|| BootError::InitrdTooLarge {
        path: path.to_owned(),
        size,
    })?;
    place(mem, path, &file, 0, addr, size)?;
    Ok((addr, size))
}

/// Builds the command line from its base and extra parts, and writes it.
pub fn write_cmdline(mem: &GuestMemoryMmap, parts: &[&str]) -> Result<String, BootError> {
    let mut cmdline = Cmdline::new(CMDLINE_MAX_BYTES).map_err(BootError::Cmdline)?;
    for part in parts.iter().filter(|p| !p.trim().is_empty()) {
        cmdline
            .insert_str(part.trim())
            .map_err(BootError::Cmdline)?;
    }
    load_cmdline(mem, GuestAddress(CMDLINE_ADDR), &cmdline).map_err(BootError::WriteCmdline)?;
    Ok(cmdline
        .as_cstring()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initrd_goes_high_and_page_aligned() {
        let a = initrd_addr(128 << 20, 32 << 20, 5000).unwrap();
        assert_eq!(a % PAGE_SIZE_BYTES, 0);
        assert!(a + 5000 <= 128 << 20);
        assert!(a >= (128 << 20) - 2 * PAGE_SIZE_BYTES);
        // Big VMs keep it below 2 GiB.
        let b = initrd_addr(8 << 30, 32 << 20, 1 << 20).unwrap();
        assert!(b + (1 << 20) <= INITRD_MAX_END);
    }

    #[test]
    fn initrd_that_would_overlap_the_kernel_is_refused() {
        assert_eq!(initrd_addr(64 << 20, 60 << 20, 8 << 20), None);
        assert_eq!(initrd_addr(64 << 20, 0, 128 << 20), None);
    }
}
