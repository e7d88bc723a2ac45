//! One module per `hull` subcommand.

pub mod container;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod hooks;
pub mod kill;
pub mod lifecycle;
pub mod list;
pub mod pause;
pub mod ps;
pub mod run;
pub mod run_image;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;
pub mod version;

#[cfg(test)]
pub mod testutil;
