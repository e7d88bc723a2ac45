//! CPUID for each vCPU: what KVM supports on this host (KVM_GET_SUPPORTED_CPUID),
//! with the topology rewritten to "one socket, one thread per core, N cores"
//! and the hypervisor bit set.

use kvm_bindings::kvm_cpuid_entry2;

const LEAF_FEATURES: u32 = 0x1;
const LEAF_CACHE_PARAMS: u32 = 0x4;
const LEAF_EXT_TOPOLOGY: u32 = 0xb;
const LEAF_V2_EXT_TOPOLOGY: u32 = 0x1f;
const LEAF_AMD_SIZE_IDS: u32 = 0x8000_0008;
const LEAF_AMD_TOPOLOGY: u32 = 0x8000_001e;

const ECX_HYPERVISOR_BIT: u32 = 1 << 31;
const EDX_HTT_BIT: u32 = 1 << 28;
const LEVEL_TYPE_SMT: u32 = 1;
const LEVEL_TYPE_CORE: u32 = 2;

/// Bits needed to hold an APIC id below `count`.
fn id_bits(count: u32) -> u32 {
    u32::BITS - count.saturating_sub(1).leading_zeros()
}

/// Rewrites `entries` (the supported CPUID) for vCPU `cpu_id` of `cpu_count`.
///
/// The TSC-deadline timer (leaf 1 ECX bit 24), which KVM emulates but does
/// not list, is deliberately not offered: with it, guests in the nested KVM
/// test host intermittently spun in KVM_RUN and never booted (seen 2026-11-22;
/// see docs/architecture.md). Revisit on hardware KVM.
pub fn fixup(entries: &mut [kvm_cpuid_entry2], cpu_id: u32, cpu_count: u32) {
    let count = cpu_count.max(1);
    let core_shift = id_bits(count);
    for e in entries.iter_mut() {
        match e.function {
            LEAF_FEATURES => {
                // EBX: initial APIC id [31:24], logical processors [23:16].
                e.ebx = (e.ebx & 0x0000_ffff) | (cpu_id << 24) | ((count & 0xff) << 16);
                e.ecx |= ECX_HYPERVISOR_BIT;
                if count > 1 {
                    e.edx |= EDX_HTT_BIT;
                } else {
                    e.edx &= !EDX_HTT_BIT;
                }
            }
            LEAF_CACHE_PARAMS => {
                // EAX[31:26]: addressable core ids - 1; [25:14]: addressable
                // ids sharing this cache - 1 (the L3 is shared, L1 and L2 are
                // per core). Both are powers of two, as the APIC id layout of
                // leaf 0xb implies.
                let ids = 1u32 << core_shift;
                let level = (e.eax >> 5) & 0x7;
                let sharing = if level >= 3 { ids - 1 } else { 0 };
                e.eax = (e.eax & 0x3fff) | (((ids - 1) & 0x3f) << 26) | ((sharing & 0xfff) << 14);
            }
            LEAF_EXT_TOPOLOGY | LEAF_V2_EXT_TOPOLOGY => {
                let (shift, logical, level_type) = match e.index {
                    0 => (0, 1, LEVEL_TYPE_SMT),
                    1 => (core_shift, count, LEVEL_TYPE_CORE),
                    _ => (0, 0, 0),
                };
                e.eax = shift;
                e.ebx = logical;
                e.ecx = (level_type << 8) | (e.index & 0xff);
                e.edx = cpu_id;
            }
            LEAF_AMD_SIZE_IDS => {
                // ECX[15:12]: APIC id size; [7:0]: cores - 1.
                e.ecx = (e.ecx & !0xf0ff) | (core_shift << 12) | (count - 1);
            }
            LEAF_AMD_TOPOLOGY => {
                e.eax = cpu_id;
                e.ebx = (e.ebx & !0xffff) | (cpu_id & 0xff);
                e.ecx &= !0xff;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(function: u32, index: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            ..Default::default()
        }
    }

    #[test]
    fn id_bits_rounds_up() {
        assert_eq!(
            (id_bits(1), id_bits(2), id_bits(3), id_bits(4), id_bits(5)),
            (0, 1, 2, 2, 3)
        );
    }

    #[test]
    fn leaf_1_carries_apic_id_count_and_hypervisor_bit() {
        let mut e = [kvm_cpuid_entry2 {
            function: 1,
            ebx: 0xffff_0800,
            edx: EDX_HTT_BIT,
            ..Default::default()
        }];
        fixup(&mut e, 3, 4);
        assert_eq!(e[0].ebx, (3 << 24) | (4 << 16) | 0x0800);
        assert_ne!(e[0].ecx & ECX_HYPERVISOR_BIT, 0);
        assert_ne!(e[0].edx & EDX_HTT_BIT, 0);
        fixup(&mut e, 0, 1);
        assert_eq!(e[0].edx & EDX_HTT_BIT, 0);
        assert_eq!(e[0].ebx >> 16, 1);
    }

    #[test]
    fn extended_topology_has_smt_and_core_levels() {
        let mut e = [leaf(0xb, 0), leaf(0xb, 1), leaf(0xb, 2)];
        fixup(&mut e, 1, 3);
        assert_eq!((e[0].eax, e[0].ebx, e[0].ecx, e[0].edx), (0, 1, 0x100, 1));
        assert_eq!((e[1].eax, e[1].ebx, e[1].ecx, e[1].edx), (2, 3, 0x201, 1));
        assert_eq!((e[2].eax, e[2].ebx, e[2].ecx), (0, 0, 2));
    }

    #[test]
    fn cache_leaf_shares_l3_only() {
        let mut e = [
            kvm_cpuid_entry2 {
                function: 4,
                index: 0,
                eax: 1 << 5 | 1,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: 4,
                index: 3,
                eax: 3 << 5 | 3,
                ..Default::default()
            },
        ];
        fixup(&mut e, 0, 3);
        assert_eq!(e[0].eax >> 26, 3, "3 cores need 4 addressable ids");
        assert_eq!((e[0].eax >> 14) & 0xfff, 0);
        assert_eq!((e[1].eax >> 14) & 0xfff, 3);
    }
}
