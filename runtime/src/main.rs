//! hull: the OCI runtime CLI. Parses the command line and dispatches to one
//! module per subcommand under `commands/`; the logic lives in the library.

use std::process::ExitCode;

mod commands;

const USAGE: &str = "usage: hull run [--bundle DIR] [--timings] [--mem MIB] [--cpus N] ID
       hull version";

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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("version") | Some("--version") | Some("-v") => commands::version::main(),
        Some("run") => match commands::run::main(&args[1..]) {
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
