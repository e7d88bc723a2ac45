//! One module per `hull` subcommand.

pub mod run;
pub mod version;
