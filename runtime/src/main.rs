//! hull: the OCI runtime CLI. Today it only reports its version; the
//! runc-compatible commands arrive with the container work.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("version") | Some("--version") | Some("-v") => {
            println!("hull version {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("hull: unknown command {other:?} (this build supports: version)");
            ExitCode::from(2)
        }
        None => {
            eprintln!("usage: hull version");
            ExitCode::from(2)
        }
    }
}
