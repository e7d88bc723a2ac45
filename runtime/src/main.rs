//! hull: the OCI runtime CLI. Parses the command line and dispatches to one
//! module per subcommand under `commands/`; the logic lives in the library.
//! Errors go to stderr as `hull: …` (exit status 1) and, with `--log`, to
//! the log file too.

use std::path::PathBuf;
use std::process::ExitCode;

use runtime::errlog::{ErrorLog, LogFormat};
use runtime::process::sync::Notifier;
use runtime::sandbox::state_dir::DEFAULT_STATE_ROOT;

mod commands;

const USAGE: &str = "usage: hull [GLOBAL OPTIONS] COMMAND [ARGS]

commands:
  create [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] ID
  start ID
  run [--bundle DIR] [--detach] [--pid-file FILE] [--console-socket SOCK] [--timings] ID
  exec [--process FILE | --tty --env K=V --cwd DIR --user UID[:GID]] [--detach]
       [--pid-file FILE] [--console-socket SOCK] ID [COMMAND ARGS...]
  kill [--all] ID [SIGNAL]
  delete [--force] ID
  pause ID
  resume ID
  ps [--format table|json] ID [PS ARGS...]
  events [--stats] [--interval DURATION] ID
  update [--memory N] [--cpu-quota N] [--cpu-period N] [--cpu-shares N] [--pids-limit N] [-r FILE] ID
  state ID
  list [--format table|json] [--quiet]
  spec [--bundle DIR]
  features
  version

global options:
  --root DIR           where state directories live (default /run/hull)
  --log FILE           also append errors to FILE
  --log-format FORMAT  text (default) or json, for --log
  --systemd-cgroup     cgroupsPath is slice:prefix:name (mapped to cgroupfs)
  --debug              accepted for runc compatibility; no effect";

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
    pub systemd_cgroup: bool,
    /// This is a sandbox or exec process: stderr belongs to the workload.
    pub in_child: bool,
}

impl Global {
    /// The global options again, for a re-executed `hull`.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec!["--root".to_string(), self.root.display().to_string()];
        if let Some(path) = &self.log.path {
            args.extend(["--log".into(), path.display().to_string()]);
            let format = match self.log.format {
                LogFormat::Json => "json",
                LogFormat::Text => "text",
            };
            args.extend(["--log-format".into(), format.into()]);
        }
        if self.systemd_cgroup {
            args.push("--systemd-cgroup".into());
        }
        args
    }

    /// A warning: on stderr (unless this is a sandbox process, whose stderr
    /// is the container's) and in the log.
    pub fn warn(&self, msg: &str) {
        if !self.in_child {
            eprintln!("hull: warning: {msg}");
        }
        let _ = self.log.warn(msg);
    }

    /// Appends `msg` to the log file only (the sandbox process: its stderr
    /// is the container's).
    fn log_only(&self, msg: &str) {
        let _ = self.log.error(msg);
    }

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
        systemd_cgroup: false,
        in_child: false,
    };
    let mut rest = args;
    while let Some(arg) = rest.first() {
        let (flag, inline) = commands::split_flag(arg);
        let takes_value = matches!(flag, "--root" | "--log" | "--log-format");
        if !takes_value {
            match arg.as_str() {
                "--debug" => {
                    rest = &rest[1..];
                    continue;
                }
                "--systemd-cgroup" => {
                    g.systemd_cgroup = true;
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
fn dispatch(global: &Global, args: &[String], child: Option<&mut Notifier>) -> anyhow::Result<i32> {
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("version") | Some("--version") | Some("-v") => Ok(commands::version::main()),
        Some("create") => commands::create::main(global, rest, child),
        Some("run") => commands::run::main(global, rest, child),
        Some("exec") => commands::exec::main(global, rest, child),
        Some("start") => commands::start::main(global, rest),
        Some("kill") => commands::kill::main(global, rest),
        Some("delete") => commands::delete::main(global, rest),
        Some("pause") => commands::pause::pause(global, rest),
        Some("resume") => commands::pause::resume(global, rest),
        Some("ps") => commands::ps::main(global, rest),
        Some("events") => commands::events::main(global, rest),
        Some("update") => commands::update::main(global, rest),
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
        "create" => commands::create::USAGE,
        "exec" => commands::exec::USAGE,
        "start" => commands::start::USAGE,
        "kill" => commands::kill::USAGE,
        "delete" => commands::delete::USAGE,
        "pause" => commands::pause::PAUSE_USAGE,
        "resume" => commands::pause::RESUME_USAGE,
        "ps" => commands::ps::USAGE,
        "events" => commands::events::USAGE,
        "update" => commands::update::USAGE,
        "state" => commands::state::USAGE,
        "list" => commands::list::USAGE,
        "spec" => commands::spec::USAGE,
        "features" => commands::features::USAGE,
        _ => return None,
    })
}

fn main() -> ExitCode {
    // A re-executed `hull` (the sandbox or exec process) has a sync pipe.
    let mut child = Notifier::take().map(|(_, n)| n);
    let all: Vec<String> = std::env::args().skip(1).collect();
    let (mut global, args) = match global(&all) {
        Ok(split) => split,
        Err(e) => {
            eprintln!("hull: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    global.in_child = child.is_some();
    let code = match dispatch(&global, args, child.as_mut()) {
        Ok(code) => code,
        Err(e) => {
            let text = error_text(&e);
            if let Some(notifier) = child.as_mut() {
                // The creator reports it; after that, stderr is the
                // container's: only the log gets it.
                if notifier.is_pending() {
                    notifier.fail(&text);
                } else {
                    global.log_only(&text);
                }
                return ExitCode::from(255);
            }
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
        let e = dispatch(&g, rest, None).unwrap_err();
        g.report(&error_text(&e));
        let line = std::fs::read_to_string(&log).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container does not exist");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }
}
