//! hull's VMM as a library: a KVM microVM booted straight into a PVH vmlinux,
//! with an 8250 console, the guest event port and virtio-mmio devices.
//!
//! ```no_run
//! let report = vmm::Vm::new(vmm::VmConfig {
//!     kernel: "/usr/local/share/hull/vmlinux".into(),
//!     initrd: Some("/usr/local/share/hull/initramfs.cpio".into()),
//!     ..Default::default()
//! })?
//! .run()?;
//! assert!(report.exit.is_clean());
//! # Ok::<(), vmm::VmError>(())
//! ```

pub mod arch;
pub mod boot;
pub mod cli;
pub mod clock;
pub mod control;
pub mod devices;
pub mod elf;
pub mod event;
pub mod memory;
pub mod vcpu;
pub mod vm;

pub use event::{VcpuError, VmEvent, VmEvents};
pub use vm::{
    Console, GuestExit, Milestone, RunReport, Timings, Vm, VmConfig, VmError, DEFAULT_CMDLINE,
};
