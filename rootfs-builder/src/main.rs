//! `hull-rootfs-builder`: writes hull's guest initramfs.
//!
//! See [`rootfs_builder::cli::USAGE`] for the command line.

use std::process::ExitCode;

use anyhow::Context;
use rootfs_builder::cli::{self, Command, USAGE};
use rootfs_builder::Error;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("hull-rootfs-builder: error: {e}");
            if matches!(e, Error::Usage(_)) {
                eprintln!("try 'hull-rootfs-builder --help'");
            }
            return ExitCode::from(2);
        }
    };
    match run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hull-rootfs-builder: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Help => {
            println!("{USAGE}");
            Ok(())
        }
        Command::Build(options) => rootfs_builder::build_image(&options)
            .with_context(|| format!("cannot build {}", options.output.display())),
    }
}
