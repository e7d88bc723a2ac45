//! PVH boot information: `hvm_start_info`, the memory map and the module list
//! (the initramfs), written where the kernel's PVH entry finds them.

use linux_loader::configurator::pvh::PvhBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info,
};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::layout::{
    ram_ranges, CMDLINE_ADDR, EBDA_ADDR, HIGH_RAM_ADDR, PVH_INFO_ADDR, PVH_MEMMAP_ADDR,
    PVH_MEMMAP_MAX_ENTRIES, PVH_MODLIST_ADDR,
};

const XEN_HVM_START_MAGIC: u32 = 0x336e_c578;
const E820_RAM: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum BootInfoError {
    #[error("the memory map has {0} entries, more than fit ({PVH_MEMMAP_MAX_ENTRIES})")]
    MemmapTooLarge(usize),
    #[error("writing the PVH boot information failed: {0}")]
    Write(linux_loader::configurator::Error),
}

/// The E820-style map: base RAM below the EBDA, then RAM from 1 MiB.
pub fn memmap(mem_bytes: u64) -> Vec<hvm_memmap_table_entry> {
    let ram = |addr: u64, size: u64| hvm_memmap_table_entry {
        addr,
        size,
        type_: E820_RAM,
        reserved: 0,
    };
    let mut map = vec![ram(0, EBDA_ADDR)];
    for (start, size) in ram_ranges(mem_bytes) {
        let start_above_1m = start.max(HIGH_RAM_ADDR);
        let end = start + size;
        if end > start_above_1m {
            map.push(ram(start_above_1m, end - start_above_1m));
        }
    }
    map
}

/// Writes start info, memory map and (when there is one) the initramfs module.
pub fn write(
    mem: &GuestMemoryMmap,
    mem_bytes: u64,
    initrd: Option<(u64, u64)>,
) -> Result<(), BootInfoError> {
    let map = memmap(mem_bytes);
    if map.len() > PVH_MEMMAP_MAX_ENTRIES {
        return Err(BootInfoError::MemmapTooLarge(map.len()));
    }
    let modules: Vec<hvm_modlist_entry> = initrd
        .map(|(paddr, size)| hvm_modlist_entry {
            paddr,
            size,
            ..Default::default()
        })
        .into_iter()
        .collect();
    let start_info = hvm_start_info {
        magic: XEN_HVM_START_MAGIC,
        version: 1,
        nr_modules: modules.len() as u32,
        modlist_paddr: if modules.is_empty() {
            0
        } else {
            PVH_MODLIST_ADDR
        },
        cmdline_paddr: CMDLINE_ADDR,
        memmap_paddr: PVH_MEMMAP_ADDR,
        memmap_entries: map.len() as u32,
        ..Default::default()
    };
    let mut params = BootParams::new(&start_info, GuestAddress(PVH_INFO_ADDR));
    params.set_sections(&map, GuestAddress(PVH_MEMMAP_ADDR));
    if !modules.is_empty() {
        params.set_modules(&modules, GuestAddress(PVH_MODLIST_ADDR));
    }
    PvhBootConfigurator::write_bootparams(&params, mem).map_err(BootInfoError::Write)
}

#[cfg(test)]
mod tests {
    use super::super::layout::{MMIO_GAP_END, MMIO_GAP_START};
    use super::*;

    #[test]
    fn memmap_skips_legacy_hole_and_mmio_gap() {
        let small = memmap(128 << 20);
        assert_eq!(small.len(), 2);
        assert_eq!((small[0].addr, small[0].size), (0, EBDA_ADDR));
        assert_eq!(
            (small[1].addr, small[1].size),
            (HIGH_RAM_ADDR, (128 << 20) - HIGH_RAM_ADDR)
        );
        let big = memmap(5 << 30);
        assert_eq!(big.len(), 3);
        assert_eq!(big[1].addr + big[1].size, MMIO_GAP_START);
        assert_eq!(big[2].addr, MMIO_GAP_END);
        assert_eq!(big[2].size, (5 << 30) - MMIO_GAP_START);
        assert!(big.iter().all(|e| e.type_ == E820_RAM));
    }
}
