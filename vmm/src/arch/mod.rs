//! x86-64 machine set-up: guest physical layout, boot-time CPU state, CPUID,
//! MSRs, the MP table that announces the vCPUs, and PVH boot information.

pub mod boot_info;
pub mod cpuid;
pub mod gdt;
pub mod layout;
pub mod mptable;
pub mod regs;
