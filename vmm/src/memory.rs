//! Guest RAM: one memfd, mapped shared, split into the layout's ranges. A
//! memfd (rather than anonymous memory) lets virtio-fs and other processes
//! share guest pages later.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::FromRawFd;

use vm_memory::{FileOffset, GuestAddress, GuestMemoryMmap};

use crate::arch::layout::ram_ranges;

/// Smallest and largest guest RAM accepted.
pub const MIN_MEM_MIB: u64 = 32;
pub const MAX_MEM_MIB: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("guest memory of {0} MiB is out of range ({MIN_MEM_MIB} to {MAX_MEM_MIB} MiB)")]
    Size(u64),
    #[error("memfd_create failed: {0}")]
    Memfd(std::io::Error),
    #[error("sizing the guest memory memfd to {bytes} bytes failed: {source}")]
    Truncate { bytes: u64, source: std::io::Error },
    #[error("mapping guest memory failed: {0}")]
    Map(vm_memory::mmap::FromRangesError),
    /// The request cannot be mapped (alignment, range); nothing was changed.
    #[error("cannot map {len} bytes of a file at guest address {addr:#x}: {reason}")]
    NotMappable {
        addr: u64,
        len: u64,
        reason: &'static str,
    },
    /// mmap itself failed: the guest range may no longer be mapped at all.
    #[error("mapping {len} bytes of a file at guest address {addr:#x} failed: {source}")]
    MapFile {
        addr: u64,
        len: u64,
        source: std::io::Error,
    },
}

/// Allocates `mem_mib` MiB of guest RAM backed by a fresh memfd.
pub fn create(mem_mib: u64) -> Result<(GuestMemoryMmap, File), MemoryError> {
    if !(MIN_MEM_MIB..=MAX_MEM_MIB).contains(&mem_mib) {
        return Err(MemoryError::Size(mem_mib));
    }
    let bytes = mem_mib << 20;
    let name = CString::new("hull-guest-ram").unwrap_or_default();
    // SAFETY: `name` is a valid NUL-terminated string; the flags are valid.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(MemoryError::Memfd(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(bytes)
        .map_err(|source| MemoryError::Truncate { bytes, source })?;
    let mut offset = 0u64;
    let mut regions = Vec::new();
    for (start, size) in ram_ranges(bytes) {
        let file_offset = FileOffset::new(file.try_clone().map_err(MemoryError::Memfd)?, offset);
        regions.push((GuestAddress(start), size as usize, Some(file_offset)));
        offset += size;
    }
    let mem = GuestMemoryMmap::from_ranges_with_files(&regions).map_err(MemoryError::Map)?;
    Ok((mem, file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{Bytes, GuestMemory};

    #[test]
    fn memory_is_backed_by_the_memfd() {
        let (mem, file) = create(64).unwrap();
        assert_eq!(mem.num_regions(), 1);
        assert_eq!(mem.last_addr(), GuestAddress((64 << 20) - 1));
        mem.write_obj(0xdead_beef_u32, GuestAddress(0x1000))
            .unwrap();
        let mut buf = [0u8; 4];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut buf, 0x1000).unwrap();
        assert_eq!(u32::from_le_bytes(buf), 0xdead_beef);
    }

    #[test]
    fn rejects_tiny_and_huge_sizes() {
        assert!(matches!(create(1), Err(MemoryError::Size(1))));
        assert!(matches!(create(MAX_MEM_MIB + 1), Err(MemoryError::Size(_))));
    }
}
