//! Guest physical address layout.
//!
//! ```text
//! 0x0000_0500  GDT used for the PVH 32-bit entry
//! 0x0000_6000  PVH start info, then the module list
//! 0x0000_7000  PVH memory map (E820-style entries)
//! 0x0002_0000  kernel command line
//! 0x0009_fc00  MP table (last KiB of base memory, where Linux scans for it)
//! 0x0010_0000  start of high RAM; the kernel's ELF segments load from here
//!   ...        initramfs, page aligned, at the top of RAM below 2 GiB
//! 0xc000_0000  MMIO gap (1 GiB): virtio-mmio devices from 0xd000_0000,
//!              IOAPIC at 0xfec0_0000, local APIC at 0xfee0_0000
//! 0x1_0000_0000  RAM above 4 GiB, when the VM has more than 3 GiB
//! ```

/// Where the GDT for the PVH entry lives.
pub const GDT_ADDR: u64 = 0x500;
/// PVH `hvm_start_info`, whose address the kernel receives in %ebx.
pub const PVH_INFO_ADDR: u64 = 0x6000;
/// PVH module list (the initramfs), right after the start info.
pub const PVH_MODLIST_ADDR: u64 = 0x6040;
/// PVH memory map.
pub const PVH_MEMMAP_ADDR: u64 = 0x7000;
/// Most memory-map entries the page at `PVH_MEMMAP_ADDR` holds.
pub const PVH_MEMMAP_MAX_ENTRIES: usize = 0x1000 / 24;
/// Kernel command line.
pub const CMDLINE_ADDR: u64 = 0x20000;
/// Linux's COMMAND_LINE_SIZE on x86, terminating NUL included.
pub const CMDLINE_MAX_BYTES: usize = 2048;
/// Start of the Extended BIOS Data Area; base RAM ends here.
pub const EBDA_ADDR: u64 = 0x9fc00;
/// The MP floating pointer and configuration table.
pub const MPTABLE_ADDR: u64 = EBDA_ADDR;
/// First byte of high memory; the kernel is loaded at or above it.
pub const HIGH_RAM_ADDR: u64 = 0x10_0000;
/// The initramfs is placed below this (Linux's default initrd_addr_max).
pub const INITRD_MAX_END: u64 = 0x8000_0000;
/// Start of the 32-bit MMIO gap; RAM beyond it continues at 4 GiB.
pub const MMIO_GAP_START: u64 = 0xc000_0000;
/// First address after the 32-bit MMIO gap.
pub const MMIO_GAP_END: u64 = 0x1_0000_0000;
/// Where virtio-mmio device windows start.
pub const VIRTIO_MMIO_BASE: u64 = 0xd000_0000;
/// Size of one virtio-mmio device window.
pub const VIRTIO_MMIO_SIZE: u64 = 0x1000;
/// First GSI for virtio-mmio devices (0-4 are the PIT, keyboard, cascade, serial).
pub const VIRTIO_IRQ_BASE: u32 = 5;
/// Last GSI the IOAPIC has.
pub const IRQ_MAX: u32 = 23;
/// IOAPIC and local APIC MMIO addresses.
pub const IOAPIC_ADDR: u32 = 0xfec0_0000;
pub const LAPIC_ADDR: u32 = 0xfee0_0000;
/// KVM's TSS needs three pages of guest physical space outside RAM.
pub const KVM_TSS_ADDR: usize = 0xfffb_d000;
/// Page size for placement.
pub const PAGE_SIZE_BYTES: u64 = 0x1000;

/// The guest RAM ranges (start, size) for `mem_bytes` of memory: one range
/// below the MMIO gap, and one at 4 GiB for whatever does not fit under it.
pub fn ram_ranges(mem_bytes: u64) -> Vec<(u64, u64)> {
    if mem_bytes <= MMIO_GAP_START {
        vec![(0, mem_bytes)]
    } else {
        vec![
            (0, MMIO_GAP_START),
            (MMIO_GAP_END, mem_bytes - MMIO_GAP_START),
        ]
    }
}

// The fixed structures must not overlap one another (checked at compile time).
const _: () = {
    assert!(GDT_ADDR + 4 * 8 <= PVH_INFO_ADDR);
    assert!(PVH_MODLIST_ADDR + 32 <= PVH_MEMMAP_ADDR);
    assert!(PVH_MEMMAP_ADDR + (PVH_MEMMAP_MAX_ENTRIES as u64) * 24 <= CMDLINE_ADDR);
    assert!(CMDLINE_ADDR + CMDLINE_MAX_BYTES as u64 <= EBDA_ADDR);
    assert!(VIRTIO_MMIO_BASE > MMIO_GAP_START && VIRTIO_MMIO_BASE < IOAPIC_ADDR as u64);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_vm_is_one_range() {
        assert_eq!(ram_ranges(128 << 20), vec![(0, 128 << 20)]);
        assert_eq!(ram_ranges(MMIO_GAP_START), vec![(0, MMIO_GAP_START)]);
    }

    #[test]
    fn big_vm_skips_the_mmio_gap() {
        let r = ram_ranges(4 << 30);
        assert_eq!(
            r,
            vec![
                (0, MMIO_GAP_START),
                (MMIO_GAP_END, (4 << 30) - MMIO_GAP_START)
            ]
        );
        assert_eq!(r.iter().map(|(_, s)| s).sum::<u64>(), 4 << 30);
    }
}
