//! Guest RAM: one memfd, mapped shared, split into the layout's ranges. A
//! memfd (rather than anonymous memory) lets virtio-fs and other processes
//! share guest pages later.
//!
//! The boot payload (kernel segments, initramfs) is not copied in: it is
//! mapped copy-on-write from its files over the memfd pages at its guest
//! address ([`map_file_cow`]), so booting neither zeroes nor copies ~15 MiB
//! up front; the guest faults in only the pages it touches, straight from the
//! page cache. Those ranges are then private to this process rather than part
//! of the memfd, which matters only to a future out-of-process device backend.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};

use vm_memory::{
    Address, FileOffset, GuestAddress, GuestMemory, GuestMemoryMmap, GuestMemoryRegion,
};

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

const PAGE_BYTES: u64 = 4096;

/// Maps `len` bytes of `file` from `offset`, copy-on-write, at guest `addr`
/// (both page aligned; the range must lie in one RAM region). The rest of the
/// last page reads as zero past the end of the file.
pub fn map_file_cow(
    mem: &GuestMemoryMmap,
    addr: u64,
    file: &File,
    offset: u64,
    len: u64,
) -> Result<(), MemoryError> {
    let refuse = |reason| MemoryError::NotMappable { addr, len, reason };
    if len == 0 || !addr.is_multiple_of(PAGE_BYTES) || !offset.is_multiple_of(PAGE_BYTES) {
        return Err(refuse("address, offset or length not page aligned"));
    }
    let mapped = len.div_ceil(PAGE_BYTES) * PAGE_BYTES;
    let region = mem
        .find_region(GuestAddress(addr))
        .ok_or(refuse("not in guest RAM"))?;
    let region_end = region.start_addr().raw_value() + region.len();
    if addr.checked_add(mapped).is_none_or(|end| end > region_end) {
        return Err(refuse("crosses the end of a RAM region"));
    }
    let host = mem
        .get_host_address(GuestAddress(addr))
        .map_err(|_| refuse("no host address"))?;
    // SAFETY: [host, host + mapped) lies inside a mapping owned by `mem` (checked
    // above), which is replaced in place by MAP_FIXED; nothing holds references
    // into guest RAM while the VM is being built. If the range is already in a
    // KVM memory slot, KVM's MMU notifiers follow the change. The file is open
    // for reading and `offset` is page aligned.
    let got = unsafe {
        libc::mmap(
            host.cast(),
            mapped as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_FIXED,
            file.as_raw_fd(),
            offset as libc::off_t,
        )
    };
    if got != host.cast() {
        let source = std::io::Error::last_os_error();
        return Err(MemoryError::MapFile { addr, len, source });
    }
    Ok(())
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
    fn file_mapping_is_copy_on_write() {
        let (mem, memfd) = create(64).unwrap();
        let name = std::ffi::CString::new("payload").unwrap();
        // SAFETY: valid name and flags; the fd is owned by the File below.
        let file = unsafe { File::from_raw_fd(libc::memfd_create(name.as_ptr(), 0)) };
        std::os::unix::fs::FileExt::write_all_at(&file, &[7u8; 6000], 0).unwrap();
        map_file_cow(&mem, 0x10_0000, &file, 0, 6000).unwrap();
        assert_eq!(
            mem.read_obj::<u8>(GuestAddress(0x10_0000 + 5999)).unwrap(),
            7
        );
        // Past the end of the file, within the last page: zero.
        assert_eq!(
            mem.read_obj::<u8>(GuestAddress(0x10_0000 + 6000)).unwrap(),
            0
        );
        // Guest writes stay private: the file is unchanged, the memfd too.
        mem.write_obj(9u8, GuestAddress(0x10_0000)).unwrap();
        let mut b = [0u8; 1];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut b, 0).unwrap();
        assert_eq!(b, [7]);
        std::os::unix::fs::FileExt::read_exact_at(&memfd, &mut b, 0x10_0000).unwrap();
        assert_eq!(b, [0]);
        // Unaligned or out-of-RAM requests are refused.
        assert!(map_file_cow(&mem, 0x10_0800, &file, 0, 100).is_err());
        assert!(map_file_cow(&mem, 0x10_0000, &file, 0x800, 100).is_err());
        assert!(map_file_cow(&mem, (64 << 20) - 4096, &file, 0, 6000).is_err());
    }

    #[test]
    fn rejects_tiny_and_huge_sizes() {
        assert!(matches!(create(1), Err(MemoryError::Size(1))));
        assert!(matches!(create(MAX_MEM_MIB + 1), Err(MemoryError::Size(_))));
    }
}
