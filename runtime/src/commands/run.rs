//! `hull run [--bundle DIR] [--detach] [--pid-file FILE] [--console-socket
//! SOCK] [--timings] [--mem MIB] [--cpus N] ID`: runs the bundle's process
//! in a new microVM sandbox and exits with its status.
//!
//! In the foreground (no `--detach`, no `--console-socket`) this process is
//! the sandbox. Otherwise it is `create` then `start`: the sandbox process
//! holds the stdio; `--detach` returns at once, else this waits for it.

use std::path::PathBuf;

use anyhow::bail;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::create::{container_config, sandbox_config, spawn_sandbox, write_pid_file, CreateArgs};
use super::hooks;
use super::lifecycle::Foreground;
use crate::Global;
use runtime::bundle::Bundle;
use runtime::host::hooks::HookKind;
use runtime::process::exit;
use runtime::process::sync::Notifier;
use runtime::sandbox::run::{self, RunOptions};
use runtime::sandbox::stdio::HostStdio;

/// `run`: runc's flags (liboci-cli's definition) and hull's own.
#[derive(clap::Args, Debug)]
pub struct Cli {
    #[command(flatten)]
    pub base: liboci_cli::Run,
    /// Print the run's phases as JSON on stderr
    #[arg(long)]
    pub timings: bool,
    /// Guest RAM in MiB when the spec sets no memory limit (default: the config's vm.memory_mib)
    #[arg(long, value_name = "MIB")]
    pub mem: Option<u32>,
    /// vCPUs when the spec sets no CPU quota (default: the config's vm.vcpus)
    #[arg(long, value_name = "N")]
    pub cpus: Option<u32>,
}

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub id: String,
    /// Defaults to the current directory, as with runc.
    pub bundle: PathBuf,
    pub timings: bool,
    /// `--mem`, over the configuration's and the annotations' value.
    pub mem_mib: Option<u32>,
    /// `--cpus`, likewise.
    pub cpus: Option<u32>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
}

impl Args {
    /// What `cli` asks for; `--no-pivot`, `--no-new-keyring`,
    /// `--no-subreaper` and `--keep` are accepted and mean nothing here.
    pub fn from(cli: &Cli) -> anyhow::Result<Self> {
        super::create::refuse_preserve_fds(cli.base.preserve_fds)?;
        Ok(Self {
            id: cli.base.container_id.clone(),
            bundle: cli.base.bundle.clone(),
            timings: cli.timings,
            mem_mib: cli.mem,
            cpus: cli.cpus,
            detach: cli.base.detach,
            pid_file: cli.base.pid_file.clone(),
            console_socket: cli.base.console_socket.clone(),
        })
    }
}

/// Runs the container; the workload's exit status (128+N for signal N).
pub fn main(global: &Global, cli: &Cli, child: Option<&mut Notifier>) -> anyhow::Result<i32> {
    let args = Args::from(cli)?;
    if child.is_some() {
        bail!("run: not a sandbox process role");
    }
    run_args(global, &args)
}

/// Runs `args`' bundle; the workload's exit status.
pub fn run_args(global: &Global, args: &Args) -> anyhow::Result<i32> {
    let args = args.clone();
    if args.detach || args.console_socket.is_some() {
        return create_and_start(global, &args);
    }
    let bundle = Bundle::load(&args.bundle)?;
    let mut config = container_config(global, &bundle)?;
    config.vm.memory_mib = args.mem_mib.unwrap_or(config.vm.memory_mib);
    config.vm.vcpus = args.cpus.unwrap_or(config.vm.vcpus);
    let sandbox = sandbox_config(global, &args.id, &bundle, &config)?;
    let global = &global.with_log_level(config.log_level);
    for w in &bundle.warnings {
        global.warn(w);
    }
    let opts = RunOptions {
        sandbox,
        output_grace: config.output_grace(),
        forward_signals: true,
        pod: super::create::pod_of(global, &bundle)?,
    };
    let mut lifecycle = Foreground {
        global,
        hooks: &bundle.hooks,
        last_state: None,
    };
    let outcome = run::run_with(&opts, &bundle, HostStdio::inherit()?, &mut lifecycle)?;
    if let Some(mut state) = lifecycle.last_state.take() {
        state.status = runtime::state::ContainerStatus::Stopped;
        hooks::warn_all(global, &bundle.hooks, HookKind::Poststop, &state);
    }
    if args.timings {
        eprintln!("{}", outcome.timings.to_json());
    }
    Ok(outcome.status.shell_code())
}

/// `create` + `start`; waits for the sandbox process unless detached.
fn create_and_start(global: &Global, args: &Args) -> anyhow::Result<i32> {
    let create = CreateArgs {
        id: args.id.clone(),
        bundle: args.bundle.clone(),
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
    };
    let pid = spawn_sandbox(global, &create)?;
    if let Some(path) = &create.pid_file {
        write_pid_file(path, pid)?;
    }
    let start = liboci_cli::Start {
        container_id: args.id.clone(),
    };
    if let Err(e) = super::start::main(global, &start) {
        let delete = liboci_cli::Delete {
            container_id: args.id.clone(),
            force: true,
        };
        let _ = super::delete::main(global, &delete);
        return Err(e);
    }
    if args.detach {
        return Ok(0);
    }
    match waitpid(Pid::from_raw(pid), None) {
        Err(errno) => bail!(
            "cannot wait for the sandbox process: {}",
            std::io::Error::from(errno)
        ),
        Ok(WaitStatus::Signaled(_, signal, _)) => exit::die_of(signal as i32),
        Ok(WaitStatus::Exited(_, code)) => Ok(code),
        Ok(other) => bail!("the sandbox process did not exit: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{self, Command, Parsed};

    fn parse(line: &str) -> Result<Args, String> {
        let argv: Vec<String> = std::iter::once("run")
            .chain(line.split_whitespace())
            .map(String::from)
            .collect();
        match cli::parse(&argv) {
            Parsed::Run(c) => match c.command {
                Some(Command::Run(run)) => Args::from(&run).map_err(|e| e.to_string()),
                other => panic!("{other:?}"),
            },
            Parsed::Usage(u) => Err(u.message),
            Parsed::Print(p) => panic!("{p}"),
        }
    }

    #[test]
    fn options_and_the_id() {
        let a = parse("--bundle /b --timings --mem=512 --cpus 2 c1").unwrap();
        assert_eq!(
            a,
            Args {
                id: "c1".into(),
                bundle: "/b".into(),
                timings: true,
                mem_mib: Some(512),
                cpus: Some(2),
                detach: false,
                pid_file: None,
                console_socket: None,
            }
        );
        let a = parse("-b x -d --pid-file /p --console-socket /s --no-pivot --no-new-keyring c2")
            .unwrap();
        assert_eq!(
            (a.bundle, a.detach, a.pid_file, a.console_socket),
            ("x".into(), true, Some("/p".into()), Some("/s".into()))
        );
        let a = parse("c2").unwrap();
        assert_eq!((a.bundle, a.mem_mib, a.cpus), (".".into(), None, None));
    }

    #[test]
    fn bad_command_lines_are_refused() {
        for (line, want) in [
            (
                "",
                "the following required arguments were not provided: <CONTAINER_ID>",
            ),
            ("--bundle", "a value is required for '--bundle <BUNDLE>'"),
            ("--mem lots c", "invalid value 'lots' for '--mem <MIB>'"),
            ("--frobnicate c", "unexpected argument '--frobnicate' found"),
            ("a b", "unexpected argument 'b' found"),
            ("--preserve-fds 2 c", "--preserve-fds is not supported"),
        ] {
            let e = parse(line).unwrap_err();
            assert!(e.contains(want), "{line}: {e}");
        }
    }
}
