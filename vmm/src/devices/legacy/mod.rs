//! Legacy x86 devices.
