//! hull: the OCI runtime CLI. Parses the command line ([`cli`], on clap)
//! and dispatches to one module per subcommand under `commands/`; the
//! logic lives in the library. Errors go to stderr as `hull: …` (exit
//! status 1; a bad command line also prints the command's usage) and,
//! with `--log`, to the log file too.

use std::path::PathBuf;
use std::process::ExitCode;

use runtime::config::{Config, ConfigError, LogLevel};
use runtime::errlog::{ErrorLog, LogFormat};
use runtime::process::sync::Notifier;
use runtime::sandbox::state_dir::DEFAULT_STATE_ROOT;

mod cli;
mod commands;

use cli::{Command, Parsed};

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

/// Options before the subcommand (runc's global options), and the
/// configuration file they name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    pub root: PathBuf,
    pub log: ErrorLog,
    pub systemd_cgroup: bool,
    /// This is a sandbox or exec process: stderr belongs to the workload.
    pub in_child: bool,
    /// `--config PATH`, for a re-executed `hull`.
    pub config_path: Option<PathBuf>,
    /// The configuration (`/etc/hull/config.toml`, `--config`,
    /// `HULL_CONFIG`), or why it could not be read: only the commands that
    /// use it fail on a bad file (`delete` of a container still works).
    pub config: Result<Config, ConfigError>,
    /// What goes to `--log` besides errors (the config's `log.level`;
    /// `--debug` raises it to debug).
    pub log_level: LogLevel,
    /// The whole command line (after the program name), for a re-executed
    /// `hull exec`.
    pub argv: Vec<String>,
}

impl Global {
    /// The global options of a parsed command line; the configuration is
    /// loaded here.
    fn from_cli(cli: &cli::Cli, argv: &[String]) -> Result<Self, String> {
        let opts = &cli.global;
        let format = match &opts.log_format {
            Some(f) => f.parse::<LogFormat>().map_err(|e| e.to_string())?,
            None => LogFormat::Text,
        };
        let config = Config::load(cli.config.as_deref());
        let mut log_level = config.as_ref().map_or(LogLevel::Warn, |c| c.log_level);
        if opts.debug {
            log_level = LogLevel::Debug;
        }
        Ok(Self {
            root: opts
                .root
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_ROOT)),
            log: ErrorLog {
                path: opts.log.clone(),
                format,
            },
            systemd_cgroup: opts.systemd_cgroup,
            in_child: false,
            config_path: cli.config.clone(),
            config,
            log_level,
            argv: argv.to_vec(),
        })
    }

    /// The configuration, or the error reading it.
    pub fn config(&self) -> Result<&Config, ConfigError> {
        self.config.as_ref().map_err(Clone::clone)
    }

    /// These options with another log level (a container's
    /// `io.hull.log.level`).
    pub fn with_log_level(&self, level: LogLevel) -> Self {
        Self {
            log_level: if self.log_level == LogLevel::Debug {
                LogLevel::Debug
            } else {
                level
            },
            ..self.clone()
        }
    }

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
        if let Some(path) = &self.config_path {
            args.extend(["--config".into(), path.display().to_string()]);
        }
        if self.log_level == LogLevel::Debug {
            args.push("--debug".into());
        }
        args
    }

    /// A warning: on stderr (unless this is a sandbox process, whose stderr
    /// is the container's) and in the log (unless `log.level` is `error`).
    pub fn warn(&self, msg: &str) {
        if !self.in_child {
            eprintln!("hull: warning: {msg}");
        }
        if self.log_level >= LogLevel::Warn {
            let _ = self.log.warn(msg);
        }
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

/// Runs the subcommand; `Err` for a failure to report (exit status 1).
fn dispatch(
    global: &Global,
    command: &Command,
    child: Option<&mut Notifier>,
) -> anyhow::Result<i32> {
    match command {
        Command::Version => Ok(commands::version::main()),
        Command::Create(a) => commands::create::main(global, a, child),
        Command::Run(a) => commands::run::main(global, a, child),
        Command::RunImage(_) if child.is_some() => {
            anyhow::bail!("run: not a sandbox process role")
        }
        Command::RunImage(a) => commands::run_image::main(global, a),
        Command::Exec(a) => commands::exec::main(global, a, child),
        Command::Start(a) => commands::start::main(global, a),
        Command::Kill(a) => commands::kill::main(global, a),
        Command::Delete(a) => commands::delete::main(global, a),
        Command::Pause(a) => commands::pause::pause(global, a),
        Command::Resume(a) => commands::pause::resume(global, a),
        Command::Ps(a) => commands::ps::main(global, a),
        Command::Events(a) => commands::events::main(global, a),
        Command::Update(a) => commands::update::main(global, a),
        Command::State(a) => commands::state::main(global, a),
        Command::List(a) => commands::list::main(global, a),
        Command::Spec(a) => commands::spec::main(a),
        Command::Features(a) => commands::features::main(a),
    }
}

/// Reports a bad command line: `hull: <message>` and the usage line on
/// stderr, the message in `--log` when that could be parsed.
fn usage_failure(e: &cli::UsageError, args: &[String], child: Option<&mut Notifier>) -> ExitCode {
    if let Some(notifier) = child {
        notifier.fail(&e.message);
        return ExitCode::from(255);
    }
    eprintln!("hull: {}", e.message);
    if let Some(usage) = &e.usage {
        eprintln!("{usage}");
    }
    // The log flags are wanted even when the rest is wrong (containerd
    // reads the error from the log).
    let log = log_flags(args);
    let _ = log.error(&e.message);
    ExitCode::from(e.code)
}

/// `--log FILE` and `--log-format F` among the leading global options.
fn log_flags(args: &[String]) -> ErrorLog {
    let mut log = ErrorLog::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        match flag {
            "--log" | "-l" | "--log-format" | "--root" | "-r" | "--config" => {
                let value = inline.or_else(|| it.next().cloned()).unwrap_or_default();
                match flag {
                    "--log" | "-l" => log.path = Some(value.into()),
                    "--log-format" => log.format = value.parse().unwrap_or_default(),
                    _ => {}
                }
            }
            "--debug" | "--systemd-cgroup" | "-s" => {}
            _ => break,
        }
    }
    log
}

fn main() -> ExitCode {
    // The container's host process (see `runtime::process::standin`).
    if runtime::process::standin::is_standin() {
        runtime::process::standin::serve();
    }
    // A re-executed `hull` (the sandbox or exec process) has a sync pipe.
    let mut child = Notifier::take().map(|(_, n)| n);
    let all: Vec<String> = std::env::args().skip(1).collect();
    let cli = match cli::parse(&all) {
        Parsed::Run(cli) => cli,
        Parsed::Print(text) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Parsed::Usage(e) => return usage_failure(&e, &all, child.as_mut()),
    };
    let mut global = match Global::from_cli(&cli, &all) {
        Ok(g) => g,
        Err(message) => {
            let e = cli::UsageError {
                message,
                usage: None,
                code: 1,
            };
            return usage_failure(&e, &all, child.as_mut());
        }
    };
    global.in_child = child.is_some();
    let command = match (&cli.command, cli.version) {
        (_, true) => &Command::Version,
        (Some(command), false) => command,
        (None, false) => {
            let e = cli::UsageError {
                message: "no command given: try hull --help".into(),
                usage: Some("usage: hull [OPTIONS] <COMMAND>".into()),
                code: 2,
            };
            return usage_failure(&e, &all, child.as_mut());
        }
    };
    let code = match dispatch(&global, command, child.as_mut()) {
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

    fn global(all: &[String]) -> Result<(Global, Command), String> {
        match cli::parse(all) {
            Parsed::Run(c) => {
                let g = Global::from_cli(&c, all)?;
                Ok((g, c.command.expect("a command")))
            }
            Parsed::Usage(u) => Err(u.message),
            Parsed::Print(p) => Err(p),
        }
    }

    #[test]
    fn global_options() {
        let all =
            args("--root /r --log=/l.json --log-format json --debug --systemd-cgroup state c1");
        let (g, command) = global(&all).unwrap();
        assert_eq!(g.root, PathBuf::from("/r"));
        assert_eq!(g.log.path, Some(PathBuf::from("/l.json")));
        assert_eq!(g.log.format, LogFormat::Json);
        assert!(g.systemd_cgroup);
        assert_eq!(g.log_level, LogLevel::Debug);
        assert!(matches!(command, Command::State(s) if s.container_id == "c1"));
        assert_eq!(g.argv, all);
        let all = args("list");
        let (g, _) = global(&all).unwrap();
        assert_eq!(
            (g.root.to_str(), g.log),
            (Some(DEFAULT_STATE_ROOT), ErrorLog::default())
        );
        for (line, want) in [
            (
                "--root",
                "a value is required for '--root <ROOT>' but none was supplied",
            ),
            ("--log-format yaml list", "invalid log-format: yaml"),
        ] {
            assert_eq!(global(&args(line)).unwrap_err(), want);
        }
    }

    #[test]
    fn re_executed_hull_gets_the_same_globals() {
        let dir = commands::testutil::TempDir::new("main-config");
        let config = dir.path().join("c.toml");
        std::fs::write(&config, "[log]\nlevel = \"error\"\n").unwrap();
        let all = vec![
            "--root".into(),
            "/r".into(),
            "--log".into(),
            "/l".into(),
            "--config".into(),
            config.display().to_string(),
            "--systemd-cgroup".into(),
            "list".into(),
        ];
        let (g, _) = global(&all).unwrap();
        assert_eq!(g.log_level, LogLevel::Error);
        assert_eq!(
            g.config().unwrap().source.as_deref(),
            Some(config.as_path())
        );
        let mut again = g.to_args();
        again.push("list".into());
        let (g2, _) = global(&again).unwrap();
        assert_eq!(g2.to_args(), g.to_args());
        assert_eq!(g2.config, g.config);
        // A bad file fails only what uses it.
        std::fs::write(&config, "[vm]\nvcpus = 0\n").unwrap();
        let (g, _) = global(&all).unwrap();
        let e = g.config().unwrap_err().to_string();
        assert!(
            e.starts_with("bad value for vm.vcpus in the config file"),
            "{e}"
        );
    }

    #[test]
    fn log_flags_are_found_in_a_bad_command_line() {
        let log = log_flags(&args(
            "--root /r --log /l.json --log-format=json create --bogus",
        ));
        assert_eq!(log.path, Some(PathBuf::from("/l.json")));
        assert_eq!(log.format, LogFormat::Json);
        assert_eq!(log_flags(&args("create --log /x")), ErrorLog::default());
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
        let (g, command) = global(&all).unwrap();
        let e = dispatch(&g, &command, None).unwrap_err();
        g.report(&error_text(&e));
        let line = std::fs::read_to_string(&log).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container does not exist");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }
}
