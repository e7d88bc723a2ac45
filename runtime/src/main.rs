//! hull: the OCI runtime CLI. Parses the command line and dispatches to one
//! module per subcommand under `commands/`; the logic lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use runtime::sandbox::state_dir::DEFAULT_STATE_ROOT;

mod commands;

const USAGE: &str =
    "usage: hull [--root DIR] run [--bundle DIR] [--timings] [--mem MIB] [--cpus N] ID
       hull version

  --root DIR   where state directories live (default /run/hull)";

/// `hull: <error>: <cause>: …`, leaving out a cause whose text the message
/// before it already shows.
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::from("hull: ");
    let mut previous = String::new();
    for (i, cause) in e.chain().enumerate() {
        let text = cause.to_string();
        if i > 0 {
            if previous.contains(&text) {
                continue;
            }
            out.push_str(": ");
        }
        out.push_str(&text);
        previous = text;
    }
    out
}

/// Options before the subcommand (runc's global options).
#[derive(Debug)]
pub struct Global {
    pub root: PathBuf,
}

/// Splits off the global options; the rest starts with the subcommand.
fn global(args: &[String]) -> Result<(Global, &[String]), String> {
    let mut g = Global {
        root: PathBuf::from(DEFAULT_STATE_ROOT),
    };
    let mut rest = args;
    while let Some(arg) = rest.first() {
        match arg.split_once('=') {
            Some(("--root", v)) => (g.root, rest) = (v.into(), &rest[1..]),
            _ if arg == "--root" => match rest.get(1) {
                Some(v) => (g.root, rest) = (v.into(), &rest[2..]),
                None => return Err("--root needs a value".into()),
            },
            _ => break,
        }
    }
    Ok((g, rest))
}

fn main() -> ExitCode {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let (global, args) = match global(&all) {
        Ok(split) => split,
        Err(e) => {
            eprintln!("hull: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let code = match args.first().map(String::as_str) {
        Some("version") | Some("--version") | Some("-v") => commands::version::main(),
        Some("run") => match commands::run::main(&global, &args[1..]) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("{}", error_chain(&e));
                if e.chain().count() == 1 && e.to_string().contains("id is missing") {
                    eprintln!("{}", commands::run::USAGE);
                }
                1
            }
        },
        Some("-h") | Some("--help") | Some("help") => {
            println!("{USAGE}");
            0
        }
        Some(other) => {
            eprintln!("hull: unknown command {other:?}\n{USAGE}");
            2
        }
        None => {
            eprintln!("{USAGE}");
            2
        }
    };
    // Exit statuses are 0..=255; a status out of range keeps its low byte,
    // as the shell would see it.
    ExitCode::from((code & 0xff) as u8)
}
