//! hull's VMM as a library.

pub mod devices;
