//! hull: the OCI runtime CLI. Parses the command line and dispatches to one
//! module per subcommand under `commands/`; the logic lives in the library.
//! Errors go to stderr as `hull: …` (exit status 1) and, with `--log`, to
//! the log file too.

use std::path::PathBuf;
use std::process::ExitCode;

use runtime::errlog::{ErrorLog, LogFormat};
use runtime::sandbox::state_dir::DEFAULT_STATE_ROOT;

mod commands;

const USAGE: &str = "usage: hull [GLOBAL OPTIONS] COMMAND [ARGS]

commands:
  run [--bundle DIR] [--timings] [--mem MIB] [--cpus N] ID
  state ID
  list [--format table|json] [--quiet]
  spec [--bundle DIR]
  features
  version

global options:
  --root DIR           where state directories live (default /run/hull)
  --log FILE           also append errors to FILE
  --log-format FORMAT  text (default) or json, for --log
  --debug, --systemd-cgroup  accepted for runc compatibility; no effect";

/// The error and its causes, `a: b: …`, leaving out a cause whose text the
/// message before it already shows.
fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    pub root: PathBuf,
    pub log: ErrorLog,
}

impl Global {
    /// Prints `hull: <msg>` on stderr and appends it to the log file.
    fn report(&self, msg: &str) {
        eprintln!("hull: {msg}");
        if let Err(e) = self.log.error(msg) {
            let path = self.log.path.as_deref().unwrap_or(std::path::Path::new(""));
            eprintln!("hull: cannot write the log {}: {e}", path.display());
        }
    }
}

/// Splits off the global options; the rest starts with the subcommand.
fn global(args: &[String]) -> Result<(Global, &[String]), String> {
    let mut g = Global {
        root: PathBuf::from(DEFAULT_STATE_ROOT),
        log: ErrorLog::default(),
    };
    let mut rest = args;
    while let Some(arg) = rest.first() {
        let (flag, inline) = commands::split_flag(arg);
        let takes_value = matches!(flag, "--root" | "--log" | "--log-format");
        if !takes_value {
            match arg.as_str() {
                "--debug" | "--systemd-cgroup" => {
                    rest = &rest[1..];
                    continue;
                }
                _ => break,
            }
        }
        let value = match inline {
            Some(v) => {
                rest = &rest[1..];
                v.to_string()
            }
            None => match rest.get(1) {
                Some(v) => {
                    rest = &rest[2..];
                    v.clone()
                }
                None => return Err(format!("{flag} needs a value")),
            },
        };
        match flag {
            "--root" => g.root = value.into(),
            "--log" => g.log.path = Some(value.into()),
            _ => g.log.format = value.parse::<LogFormat>().map_err(|e| e.to_string())?,
        }
    }
    Ok((g, rest))
}

/// Runs the subcommand; `Err` for a failure to report (exit status 1).
fn dispatch(global: &Global, args: &[String]) -> anyhow::Result<i32> {
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("version") | Some("--version") | Some("-v") => Ok(commands::version::main()),
        Some("run") => commands::run::main(global, rest),
        Some("state") => commands::state::main(global, rest),
        Some("list") => commands::list::main(global, rest),
        Some("spec") => commands::spec::main(rest),
        Some("features") => commands::features::main(rest),
        Some("-h") | Some("--help") | Some("help") => {
            println!("{USAGE}");
            Ok(0)
        }
        Some(other) => {
            global.report(&format!("unknown command {other:?}"));
            eprintln!("{USAGE}");
            Ok(2)
        }
        None => {
            eprintln!("{USAGE}");
            Ok(2)
        }
    }
}

/// The usage line of a command whose arguments were wrong.
fn usage_of(command: &str) -> Option<&'static str> {
    Some(match command {
        "run" => commands::run::USAGE,
        "state" => commands::state::USAGE,
        "list" => commands::list::USAGE,
        "spec" => commands::spec::USAGE,
        "features" => commands::features::USAGE,
        _ => return None,
    })
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
    let code = match dispatch(&global, args) {
        Ok(code) => code,
        Err(e) => {
            let text = error_text(&e);
            global.report(&text);
            let usage_error = ["id is missing", "requires exactly", "unknown option"];
            if e.chain().count() == 1 && usage_error.iter().any(|u| text.contains(u)) {
                if let Some(usage) = usage_of(&args[0]) {
                    eprintln!("{usage}");
                }
            }
            1
        }
    };
    // Exit statuses are 0..=255; a status out of range keeps its low byte,
    // as the shell would see it.
    ExitCode::from((code & 0xff) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn global_options() {
        let all =
            args("--root /r --log=/l.json --log-format json --debug --systemd-cgroup state c1");
        let (g, rest) = global(&all).unwrap();
        assert_eq!(g.root, PathBuf::from("/r"));
        assert_eq!(g.log.path, Some(PathBuf::from("/l.json")));
        assert_eq!(g.log.format, LogFormat::Json);
        assert_eq!(rest, args("state c1"));
        let all = args("list");
        let (g, rest) = global(&all).unwrap();
        assert_eq!(
            (g.root.to_str(), g.log),
            (Some(DEFAULT_STATE_ROOT), ErrorLog::default())
        );
        assert_eq!(rest, args("list"));
        for (line, want) in [
            ("--root", "--root needs a value"),
            ("--log-format yaml list", "invalid log-format: yaml"),
        ] {
            assert_eq!(global(&args(line)).unwrap_err(), want);
        }
    }

    #[test]
    fn errors_are_reported_with_their_causes_once() {
        let e = anyhow::anyhow!("inner: detail").context("outer");
        assert_eq!(error_text(&e), "outer: inner: detail");
        let e = anyhow::anyhow!("x").context("cannot do x");
        assert_eq!(error_text(&e), "cannot do x");
    }

    #[test]
    fn an_unknown_id_is_reported_and_logged_like_runc() {
        let dir = commands::testutil::TempDir::new("main-log");
        let log = dir.path().join("log.json");
        let all = vec![
            "--root".into(),
            dir.path().join("root").display().to_string(),
            "--log".into(),
            log.display().to_string(),
            "--log-format=json".into(),
            "state".into(),
            "ghost".into(),
        ];
        let (g, rest) = global(&all).unwrap();
        let e = dispatch(&g, rest).unwrap_err();
        g.report(&error_text(&e));
        let line = std::fs::read_to_string(&log).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container does not exist");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }
}
