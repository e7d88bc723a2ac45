//! Boot-time vCPU state for the PVH entry: registers, segments, FPU, MSRs and
//! the local APIC's LINT pins.

use kvm_bindings::{kvm_fpu, kvm_msr_entry, kvm_regs, Msrs};
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::gdt::{self, PVH_GDT};
use super::layout::{GDT_ADDR, PVH_INFO_ADDR};

/// Errors setting up a vCPU; each names the ioctl that failed.
#[derive(Debug, thiserror::Error)]
pub enum RegsError {
    #[error("KVM_SET_REGS failed: {0}")]
    SetRegs(kvm_ioctls::Error),
    #[error("KVM_GET_SREGS failed: {0}")]
    GetSregs(kvm_ioctls::Error),
    #[error("KVM_SET_SREGS failed: {0}")]
    SetSregs(kvm_ioctls::Error),
    #[error("KVM_SET_FPU failed: {0}")]
    SetFpu(kvm_ioctls::Error),
    #[error("KVM_SET_MSRS failed: {0}")]
    SetMsrs(kvm_ioctls::Error),
    #[error("KVM_SET_MSRS set {set} of {wanted} MSRs; MSR {msr:#x} was refused")]
    MsrRefused { set: usize, wanted: usize, msr: u32 },
    #[error("building the MSR list failed: {0}")]
    MsrList(vmm_sys_util::fam::Error),
    #[error("KVM_GET_LAPIC failed: {0}")]
    GetLapic(kvm_ioctls::Error),
    #[error("KVM_SET_LAPIC failed: {0}")]
    SetLapic(kvm_ioctls::Error),
    #[error("writing the GDT to guest memory failed: {0}")]
    WriteGdt(vm_memory::GuestMemoryError),
}

const X86_CR0_PE: u64 = 0x1;
const X86_CR0_ET: u64 = 0x10;

/// Writes the PVH GDT into guest memory (once per VM).
pub fn write_gdt(mem: &GuestMemoryMmap) -> Result<(), RegsError> {
    for (i, entry) in PVH_GDT.iter().enumerate() {
        mem.write_obj(*entry, GuestAddress(GDT_ADDR + 8 * i as u64))
            .map_err(RegsError::WriteGdt)?;
    }
    Ok(())
}

/// General registers for the boot vCPU: entry point, start info in %ebx.
pub fn setup_regs(vcpu: &VcpuFd, entry: u64) -> Result<(), RegsError> {
    let regs = kvm_regs {
        rflags: 0x2,
        rip: entry,
        rbx: PVH_INFO_ADDR,
        ..Default::default()
    };
    vcpu.set_regs(&regs).map_err(RegsError::SetRegs)
}

/// 32-bit protected mode, paging off, flat segments from the PVH GDT.
pub fn setup_sregs(vcpu: &VcpuFd) -> Result<(), RegsError> {
    let mut sregs = vcpu.get_sregs().map_err(RegsError::GetSregs)?;
    let data = gdt::segment(gdt::DATA_INDEX);
    sregs.cs = gdt::segment(gdt::CODE_INDEX);
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = gdt::segment(gdt::TSS_INDEX);
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = (PVH_GDT.len() * 8 - 1) as u16;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
    sregs.cr3 = 0;
    sregs.cr4 = 0;
    sregs.efer = 0;
    vcpu.set_sregs(&sregs).map_err(RegsError::SetSregs)
}

/// x87 control word and MXCSR at their reset values.
pub fn setup_fpu(vcpu: &VcpuFd) -> Result<(), RegsError> {
    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu).map_err(RegsError::SetFpu)
}

const MSR_IA32_TSC: u32 = 0x10;
const MSR_IA32_SYSENTER_CS: u32 = 0x174;
const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_CSTAR: u32 = 0xc000_0083;
const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
const MISC_ENABLE_FAST_STRING: u64 = 1;
/// MTRRs enabled, default memory type write-back.
const MTRR_ENABLE_WRITEBACK: u64 = (1 << 11) | 6;

/// The MSR values a freshly reset CPU would have that Linux relies on.
pub fn boot_msrs() -> Vec<(u32, u64)> {
    vec![
        (MSR_IA32_SYSENTER_CS, 0),
        (MSR_IA32_SYSENTER_ESP, 0),
        (MSR_IA32_SYSENTER_EIP, 0),
        (MSR_STAR, 0),
        (MSR_CSTAR, 0),
        (MSR_KERNEL_GS_BASE, 0),
        (MSR_SYSCALL_MASK, 0),
        (MSR_LSTAR, 0),
        (MSR_IA32_TSC, 0),
        (MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING),
        (MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WRITEBACK),
    ]
}

pub fn setup_msrs(vcpu: &VcpuFd) -> Result<(), RegsError> {
    let wanted = boot_msrs();
    let entries: Vec<kvm_msr_entry> = wanted
        .iter()
        .map(|&(index, data)| kvm_msr_entry {
            index,
            data,
            ..Default::default()
        })
        .collect();
    let msrs = Msrs::from_entries(&entries).map_err(RegsError::MsrList)?;
    let set = vcpu.set_msrs(&msrs).map_err(RegsError::SetMsrs)?;
    if set != wanted.len() {
        return Err(RegsError::MsrRefused {
            set,
            wanted: wanted.len(),
            msr: wanted.get(set).map_or(0, |m| m.0),
        });
    }
    Ok(())
}

const APIC_LVT_LINT0: usize = 0x350;
const APIC_LVT_LINT1: usize = 0x360;
const APIC_MODE_NMI: u32 = 0x4;
const APIC_MODE_EXTINT: u32 = 0x7;

/// Sets the delivery mode of a local vector table entry.
pub fn set_delivery_mode(lvt: u32, mode: u32) -> u32 {
    (lvt & !0x700) | (mode << 8)
}

/// LINT0 delivers the PIC's ExtINT, LINT1 delivers NMIs, as on a PC.
pub fn setup_lapic(vcpu: &VcpuFd) -> Result<(), RegsError> {
    let mut lapic = vcpu.get_lapic().map_err(RegsError::GetLapic)?;
    for (reg, mode) in [
        (APIC_LVT_LINT0, APIC_MODE_EXTINT),
        (APIC_LVT_LINT1, APIC_MODE_NMI),
    ] {
        let bytes: [u8; 4] = std::array::from_fn(|i| lapic.regs[reg + i] as u8);
        let value = set_delivery_mode(u32::from_le_bytes(bytes), mode);
        for (i, b) in value.to_le_bytes().into_iter().enumerate() {
            lapic.regs[reg + i] = b as libc::c_char;
        }
    }
    vcpu.set_lapic(&lapic).map_err(RegsError::SetLapic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_mode_replaces_only_bits_8_to_10() {
        assert_eq!(set_delivery_mode(0x0001_0700, APIC_MODE_NMI), 0x0001_0400);
        assert_eq!(
            set_delivery_mode(0xffff_ffff, APIC_MODE_EXTINT),
            0xffff_ffff
        );
        assert_eq!(set_delivery_mode(0, APIC_MODE_EXTINT), 0x700);
    }

    #[test]
    fn msrs_enable_mtrrs_write_back() {
        let msrs = boot_msrs();
        assert!(msrs.contains(&(MSR_MTRR_DEF_TYPE, 0x806)));
        let mut indexes: Vec<u32> = msrs.iter().map(|m| m.0).collect();
        indexes.sort_unstable();
        indexes.dedup();
        assert_eq!(indexes.len(), msrs.len(), "duplicate MSR");
    }
}
