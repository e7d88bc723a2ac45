//! The `hull` command line, on clap: runc's global options and
//! subcommands with every spelling engines use (see `docs/engines.md` and
//! `tests/fixtures/engines/calls.txt`). Where youki's `liboci-cli`
//! definitions take what runc takes they are used as they are; `kill`
//! (optional signal), `list` (`-f`), `events` (`--interval 5s`), `update`
//! (`--memory 64m`, `--cpu-quota -1`) and `run` (hull's `--timings --mem
//! --cpus`) have their own, in their command files.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands::{events, kill, list, run, run_image, update};

/// hull: a runc-compatible OCI runtime whose containers run in microVMs.
#[derive(Parser, Debug)]
#[command(
    name = "hull",
    disable_version_flag = true,
    subcommand_required = false,
    after_help = "Configuration: /etc/hull/config.toml (or --config, HULL_CONFIG); see README.md."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: liboci_cli::GlobalOpts,
    /// The configuration file (default /etc/hull/config.toml, or $HULL_CONFIG)
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Create(liboci_cli::Create),
    Start(liboci_cli::Start),
    State(liboci_cli::State),
    Kill(kill::Args),
    Delete(liboci_cli::Delete),
    Run(run::Cli),
    /// `run --image`/`--rootfs` ([`image_run_position`] renames it).
    #[command(name = "run-image", hide = true)]
    RunImage(run_image::Cli),
    // runc spells --cap -c too.
    #[command(mut_arg("cap", |a| a.short('c')))]
    Exec(liboci_cli::Exec),
    Pause(liboci_cli::Pause),
    Resume(liboci_cli::Resume),
    Ps(liboci_cli::Ps),
    Events(events::Args),
    Update(update::Args),
    List(list::Args),
    Spec(liboci_cli::Spec),
    Features(liboci_cli::Features),
    /// Print the version
    Version,
}

/// A command line clap refused, as hull reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    /// One line: `unexpected argument '--x' found`.
    pub message: String,
    /// clap's usage line for the (sub)command.
    pub usage: Option<String>,
    /// 2 for a missing or unknown command (as before), 1 otherwise (as
    /// runc for a bad flag).
    pub code: u8,
}

/// What the command line asks for: a command to run, or text to print
/// (`--help`), or a usage error.
#[derive(Debug)]
pub enum Parsed {
    Run(Box<Cli>),
    Print(String),
    Usage(UsageError),
}

/// Global options that take a value (`--root DIR`), short and long.
const GLOBAL_VALUES: [&str; 5] = ["--log", "-l", "--log-format", "--root", "-r"];

/// Where `args` has a `run` subcommand that names `--image` or `--rootfs`
/// before any `--`: that `run` is image mode ([`run_image`]), not runc's.
fn image_run_position(args: &[String]) -> Option<usize> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if GLOBAL_VALUES.contains(&a) {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        if a != "run" {
            return None;
        }
        let image_mode = args[i + 1..].iter().take_while(|a| *a != "--").any(|a| {
            ["--image", "--rootfs"]
                .iter()
                .any(|f| a == f || a.starts_with(&format!("{f}=")))
        });
        return image_mode.then_some(i);
    }
    None
}

/// Parses `hull`'s arguments (without the program name).
pub fn parse(args: &[String]) -> Parsed {
    let mut args = args.to_vec();
    if let Some(i) = image_run_position(&args) {
        args[i] = "run-image".into();
    }
    let args = args.as_slice();
    let argv = std::iter::once("hull".to_string()).chain(args.iter().cloned());
    match Cli::try_parse_from(argv) {
        Ok(cli) => Parsed::Run(Box::new(cli)),
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                Parsed::Print(e.render().to_string())
            }
            _ => {
                let mut usage = usage_error(&e);
                if usage.usage.is_none() {
                    usage.usage = subcommand_usage(args);
                }
                Parsed::Usage(usage)
            }
        },
    }
}

/// The usage line of the first subcommand named in `args` (clap leaves it
/// out of some errors, such as a missing value).
fn subcommand_usage(args: &[String]) -> Option<String> {
    use clap::CommandFactory;
    let mut cli = Cli::command();
    cli.build();
    let name = args
        .iter()
        .find(|a| cli.find_subcommand(a.as_str()).is_some())?;
    let sub = cli.find_subcommand_mut(name.as_str())?;
    let text = sub.render_usage().to_string();
    text.trim()
        .strip_prefix("Usage: ")
        .map(|u| format!("usage: {u}"))
}

/// clap's message as one line, and its usage line.
fn usage_error(e: &clap::Error) -> UsageError {
    use clap::error::ErrorKind;
    let text = e.render().to_string();
    let mut message = String::new();
    let mut usage = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(u) = line.strip_prefix("Usage: ") {
            usage = Some(format!("usage: {u}"));
        } else if line.is_empty()
            || line.starts_with("tip:")
            || line.starts_with("For more information")
        {
            continue;
        } else if usage.is_none() {
            let line = line.strip_prefix("error: ").unwrap_or(line);
            if !message.is_empty() {
                message.push(' ');
            }
            message.push_str(line);
        }
    }
    let code = match e.kind() {
        ErrorKind::InvalidSubcommand
        | ErrorKind::MissingSubcommand
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 2,
        _ => 1,
    };
    UsageError {
        message,
        usage,
        code,
    }
}

#[cfg(test)]
mod tests;
