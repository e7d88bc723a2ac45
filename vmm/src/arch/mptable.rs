//! The Intel MultiProcessor Specification 1.4 table: how a guest without ACPI
//! learns its CPUs, its IOAPIC and how ISA interrupts are wired to it.
//!
//! Built as bytes (little endian) and written at `MPTABLE_ADDR`, the last KiB
//! of base memory, where Linux scans for the floating pointer.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::layout::{IOAPIC_ADDR, IRQ_MAX, LAPIC_ADDR, MPTABLE_ADDR};

/// Most vCPUs the table (and the guest kernel's NR_CPUS) supports.
pub const MAX_CPUS: u32 = 32;

const FLOATING_LEN: usize = 16;
const HEADER_LEN: usize = 44;
const SPEC_REV: u8 = 4;
const APIC_VERSION: u8 = 0x14;
const IOAPIC_VERSION: u8 = 0x11;
const ENTRY_PROCESSOR: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IOAPIC: u8 = 2;
const ENTRY_IO_INTERRUPT: u8 = 3;
const ENTRY_LOCAL_INTERRUPT: u8 = 4;
const INT_TYPE_INT: u8 = 0;
const INT_TYPE_NMI: u8 = 1;
const INT_TYPE_EXTINT: u8 = 3;
const CPU_ENABLED: u8 = 1;
const CPU_BOOTSTRAP: u8 = 2;
/// Family 6 signature and FPU + APIC feature flags.
const CPU_SIGNATURE: u32 = 0x600;
const CPU_FEATURES: u32 = 0x201;
const BUS_ISA: u8 = 0;

#[derive(Debug, thiserror::Error)]
pub enum MptableError {
    #[error("{0} vCPUs requested; the MP table supports 1 to {MAX_CPUS}")]
    CpuCount(u32),
    #[error("writing the MP table to guest memory failed: {0}")]
    Write(vm_memory::GuestMemoryError),
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |acc, b| acc.wrapping_add(*b))
        .wrapping_neg()
}

fn io_interrupt(kind: u8, ioapic_id: u8, irq: u8) -> [u8; 8] {
    [ENTRY_IO_INTERRUPT, kind, 0, 0, BUS_ISA, irq, ioapic_id, irq]
}

/// The table's bytes for `cpus` vCPUs, to be placed at `base`.
pub fn build(cpus: u32, base: u64) -> Result<Vec<u8>, MptableError> {
    if cpus == 0 || cpus > MAX_CPUS {
        return Err(MptableError::CpuCount(cpus));
    }
    let ioapic_id = cpus as u8;
    let mut entries: Vec<u8> = Vec::new();
    let mut count: u16 = 0;
    for id in 0..cpus {
        let flags = CPU_ENABLED | if id == 0 { CPU_BOOTSTRAP } else { 0 };
        entries.extend_from_slice(&[ENTRY_PROCESSOR, id as u8, APIC_VERSION, flags]);
        entries.extend_from_slice(&CPU_SIGNATURE.to_le_bytes());
        entries.extend_from_slice(&CPU_FEATURES.to_le_bytes());
        entries.extend_from_slice(&[0; 8]);
        count += 1;
    }
    entries.extend_from_slice(&[ENTRY_BUS, BUS_ISA]);
    entries.extend_from_slice(b"ISA   ");
    entries.extend_from_slice(&[ENTRY_IOAPIC, ioapic_id, IOAPIC_VERSION, 1]);
    entries.extend_from_slice(&IOAPIC_ADDR.to_le_bytes());
    count += 2;
    // KVM's default routing sends GSI n to IOAPIC pin n, the PIT on GSI 0.
    for irq in 0..=IRQ_MAX as u8 {
        entries.extend_from_slice(&io_interrupt(INT_TYPE_INT, ioapic_id, irq));
        count += 1;
    }
    // LINT0 of every local APIC takes ExtINT, LINT1 takes NMI.
    entries.extend_from_slice(&[
        ENTRY_LOCAL_INTERRUPT,
        INT_TYPE_EXTINT,
        0,
        0,
        BUS_ISA,
        0,
        0xff,
        0,
    ]);
    entries.extend_from_slice(&[
        ENTRY_LOCAL_INTERRUPT,
        INT_TYPE_NMI,
        0,
        0,
        BUS_ISA,
        0,
        0xff,
        1,
    ]);
    count += 2;

    let table_addr = base + FLOATING_LEN as u64;
    let mut table = Vec::with_capacity(HEADER_LEN + entries.len());
    table.extend_from_slice(b"PCMP");
    table.extend_from_slice(&((HEADER_LEN + entries.len()) as u16).to_le_bytes());
    table.extend_from_slice(&[SPEC_REV, 0]); // checksum patched below
    table.extend_from_slice(b"HULL    ");
    table.extend_from_slice(b"hull-vmm    ");
    table.extend_from_slice(&0u32.to_le_bytes()); // OEM table pointer
    table.extend_from_slice(&0u16.to_le_bytes()); // OEM table size
    table.extend_from_slice(&count.to_le_bytes());
    table.extend_from_slice(&LAPIC_ADDR.to_le_bytes());
    table.extend_from_slice(&[0; 4]); // extended table length, checksum, reserved
    table.extend_from_slice(&entries);
    table[7] = checksum(&table);

    let mut out = Vec::with_capacity(FLOATING_LEN + table.len());
    out.extend_from_slice(b"_MP_");
    out.extend_from_slice(&(table_addr as u32).to_le_bytes());
    out.extend_from_slice(&[1, SPEC_REV, 0, 0, 0, 0, 0, 0]); // length in 16-byte units
    out[10] = checksum(&out);
    out.extend_from_slice(&table);
    Ok(out)
}

/// Writes the table for `cpus` vCPUs into guest memory.
pub fn write(mem: &GuestMemoryMmap, cpus: u32) -> Result<(), MptableError> {
    let bytes = build(cpus, MPTABLE_ADDR)?;
    mem.write_slice(&bytes, GuestAddress(MPTABLE_ADDR))
        .map_err(MptableError::Write)
}

#[cfg(test)]
mod tests {
    use super::super::layout::EBDA_ADDR;
    use super::*;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b))
    }

    #[test]
    fn checksums_and_lengths_are_consistent() {
        for cpus in [1, 2, 7, MAX_CPUS] {
            let t = build(cpus, MPTABLE_ADDR).unwrap();
            assert_eq!(&t[..4], b"_MP_");
            assert_eq!(sum(&t[..16]), 0);
            let table_len = u16::from_le_bytes([t[20], t[21]]) as usize;
            assert_eq!(16 + table_len, t.len());
            assert_eq!(&t[16..20], b"PCMP");
            assert_eq!(sum(&t[16..]), 0);
            let count = u16::from_le_bytes([t[16 + 34], t[16 + 35]]) as u32;
            assert_eq!(count, cpus + 2 + 24 + 2);
            // Every ISA IRQ, the timer's included, is an ordinary INT entry.
            let ints = t
                .windows(2)
                .filter(|w| w == &[ENTRY_IO_INTERRUPT, INT_TYPE_INT])
                .count();
            assert!(ints >= 24);
            assert!(
                MPTABLE_ADDR + t.len() as u64 <= EBDA_ADDR + 1024,
                "{cpus} cpus overflow"
            );
        }
    }

    #[test]
    fn first_cpu_is_the_bootstrap_processor() {
        let t = build(2, MPTABLE_ADDR).unwrap();
        let first = 16 + HEADER_LEN;
        assert_eq!(t[first..first + 4], [ENTRY_PROCESSOR, 0, APIC_VERSION, 3]);
        assert_eq!(
            t[first + 20..first + 24],
            [ENTRY_PROCESSOR, 1, APIC_VERSION, 1]
        );
        let ptr = u32::from_le_bytes([t[4], t[5], t[6], t[7]]) as u64;
        assert_eq!(ptr, MPTABLE_ADDR + 16);
    }

    #[test]
    fn rejects_bad_cpu_counts() {
        assert!(matches!(build(0, 0), Err(MptableError::CpuCount(0))));
        assert!(matches!(
            build(MAX_CPUS + 1, 0),
            Err(MptableError::CpuCount(_))
        ));
    }
}
