//! hull's host side: OCI bundles ([`bundle`]) and the sandbox that runs a
//! container in a microVM ([`sandbox`]): it boots `hull-vmm` with the
//! container's root file system shared over virtio-fs, talks to the in-guest
//! agent over vsock, relays stdio and signals, and tears everything down.

pub mod bundle;
pub mod config;
pub mod container;
pub mod errlog;
pub mod from_image;
pub mod host;
pub mod process;
pub mod sandbox;
pub mod state;

/// Test helpers, shared by this crate's unit tests and the `hull` binary's.
#[doc(hidden)]
pub mod testutil;
