//! The flat GDT for the PVH 32-bit protected-mode entry, and the
//! `kvm_segment`s that match its descriptors.

use kvm_bindings::kvm_segment;

/// Builds a GDT descriptor from access/flags bits, base and limit.
pub const fn descriptor(flags: u16, base: u32, limit: u32) -> u64 {
    let (flags, base, limit) = (flags as u64, base as u64, limit as u64);
    ((base & 0xff00_0000) << 32)
        | ((flags & 0xf0ff) << 40)
        | ((limit & 0x000f_0000) << 32)
        | ((base & 0x00ff_ffff) << 16)
        | (limit & 0xffff)
}

/// Null, 32-bit flat code, flat data, and a TSS: what the PVH entry expects.
pub const PVH_GDT: [u64; 4] = [
    0,
    descriptor(0xc09b, 0, 0xfffff),
    descriptor(0xc093, 0, 0xfffff),
    descriptor(0x008b, 0, 0x67),
];
pub const CODE_INDEX: u16 = 1;
pub const DATA_INDEX: u16 = 2;
pub const TSS_INDEX: u16 = 3;

/// The segment register contents that descriptor `index` loads.
pub fn segment(index: u16) -> kvm_segment {
    let entry = PVH_GDT[index as usize];
    let bits = |shift: u32, mask: u64| ((entry >> shift) & mask) as u8;
    let base = ((entry >> 32) & 0xff00_0000) | ((entry >> 16) & 0x00ff_ffff);
    let raw_limit = (((entry >> 32) & 0x000f_0000) | (entry & 0xffff)) as u32;
    let granular = bits(55, 1) == 1;
    let present = bits(47, 1);
    kvm_segment {
        base,
        limit: if granular {
            (raw_limit << 12) | 0xfff
        } else {
            raw_limit
        },
        selector: index * 8,
        type_: bits(40, 0xf),
        present,
        dpl: bits(45, 3),
        db: bits(54, 1),
        s: bits(44, 1),
        l: bits(53, 1),
        g: bits(55, 1),
        avl: bits(52, 1),
        unusable: u8::from(present == 0),
        padding: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_segment_is_flat_32_bit_execute_read() {
        assert_eq!(PVH_GDT[1], 0x00cf_9b00_0000_ffff);
        let cs = segment(CODE_INDEX);
        assert_eq!((cs.base, cs.limit, cs.selector), (0, 0xffff_ffff, 8));
        assert_eq!(
            (cs.type_, cs.present, cs.db, cs.s, cs.l, cs.g),
            (0xb, 1, 1, 1, 0, 1)
        );
    }

    #[test]
    fn data_and_tss_segments() {
        let ds = segment(DATA_INDEX);
        assert_eq!((ds.type_, ds.selector, ds.limit), (0x3, 16, 0xffff_ffff));
        let tr = segment(TSS_INDEX);
        assert_eq!((tr.type_, tr.s, tr.g, tr.limit), (0xb, 0, 0, 0x67));
        assert_eq!(tr.unusable, 0);
    }
}
