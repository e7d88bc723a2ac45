//! `hull run [--bundle DIR] [--detach] [--pid-file FILE] [--console-socket
//! SOCK] [--timings] [--mem MIB] [--cpus N] ID`: runs the bundle's process
//! in a new microVM sandbox and exits with its status.
//!
//! In the foreground (no `--detach`, no `--console-socket`) this process is
//! the sandbox. Otherwise it is `create` then `start`: the sandbox process
//! holds the stdio; `--detach` returns at once, else this waits for it.

use std::path::PathBuf;

use anyhow::{bail, Context};

use super::create::{sandbox_config, spawn_sandbox, write_pid_file, CreateArgs};
use super::hooks;
use super::lifecycle::Foreground;
use crate::Global;
use runtime::bundle::Bundle;
use runtime::host::hooks::HookKind;
use runtime::host::resources::VmDefaults;
use runtime::process::exit;
use runtime::process::sync::Notifier;
use runtime::sandbox::run::{self, RunOptions, DEFAULT_OUTPUT_GRACE};
use runtime::sandbox::stdio::HostStdio;
use runtime::sandbox::{DEFAULT_CPUS, DEFAULT_MEM_MIB};

pub const USAGE: &str = "usage: hull run [--bundle DIR] [--detach] [--pid-file FILE] [--console-socket SOCK] [--timings] [--mem MIB] [--cpus N] ID";

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub id: String,
    /// Defaults to the current directory, as with runc.
    pub bundle: PathBuf,
    pub timings: bool,
    pub mem_mib: u32,
    pub cpus: u32,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
}

/// Parses the arguments after `run`.
pub fn parse(args: &[String]) -> anyhow::Result<Args> {
    let mut parsed = Args {
        id: String::new(),
        bundle: PathBuf::from("."),
        timings: false,
        mem_mib: DEFAULT_MEM_MIB,
        cpus: DEFAULT_CPUS,
        detach: false,
        pid_file: None,
        console_socket: None,
    };
    let mut id = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .with_context(|| format!("{flag} needs a value"))
        };
        match flag {
            "-b" | "--bundle" => parsed.bundle = value()?.into(),
            "--timings" => parsed.timings = true,
            "-d" | "--detach" => parsed.detach = true,
            "--pid-file" => parsed.pid_file = Some(value()?.into()),
            "--console-socket" => parsed.console_socket = Some(value()?.into()),
            "--no-pivot" | "--no-new-keyring" => {}
            "--preserve-fds" => {
                if value()? != "0" {
                    bail!(
                        "--preserve-fds is not supported: descriptors cannot be passed into a VM"
                    );
                }
            }
            "--mem" => {
                let v = value()?;
                parsed.mem_mib = v.parse().with_context(|| format!("--mem {v:?}"))?;
            }
            "--cpus" => {
                let v = value()?;
                parsed.cpus = v.parse().with_context(|| format!("--cpus {v:?}"))?;
            }
            f if f.starts_with('-') && f.len() > 1 => bail!("unknown option {f}"),
            _ if id.is_some() => bail!("unexpected argument {arg:?}"),
            _ => id = Some(arg.clone()),
        }
    }
    parsed.id = id.context("the container id is missing")?;
    Ok(parsed)
}

/// Runs the container; the workload's exit status (128+N for signal N).
pub fn main(global: &Global, args: &[String], child: Option<&mut Notifier>) -> anyhow::Result<i32> {
    let args = parse(args)?;
    if child.is_some() {
        bail!("run: not a sandbox process role");
    }
    if args.detach || args.console_socket.is_some() {
        return create_and_start(global, &args);
    }
    let bundle = Bundle::load(&args.bundle)?;
    for w in &bundle.warnings {
        global.warn(w);
    }
    let defaults = VmDefaults {
        mem_mib: args.mem_mib,
        cpus: args.cpus,
    };
    let sandbox = sandbox_config(global, &args.id, &bundle, defaults)?;
    let opts = RunOptions {
        sandbox,
        output_grace: DEFAULT_OUTPUT_GRACE,
        forward_signals: true,
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
    if let Err(e) = super::start::main(global, std::slice::from_ref(&args.id)) {
        let _ = super::delete::main(global, &["--force".into(), args.id.clone()]);
        return Err(e);
    }
    if args.detach {
        return Ok(0);
    }
    let mut status = 0;
    // SAFETY: waitpid on our own child with a valid status pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    if r < 0 {
        bail!(
            "cannot wait for the sandbox process: {}",
            std::io::Error::last_os_error()
        );
    }
    if libc::WIFSIGNALED(status) {
        exit::die_of(libc::WTERMSIG(status));
    }
    Ok(libc::WEXITSTATUS(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options_and_the_id() {
        let a = parse(&args("--bundle /b --timings --mem=512 --cpus 2 c1")).unwrap();
        assert_eq!(
            a,
            Args {
                id: "c1".into(),
                bundle: "/b".into(),
                timings: true,
                mem_mib: 512,
                cpus: 2,
                detach: false,
                pid_file: None,
                console_socket: None,
            }
        );
        let a = parse(&args("c2 -b=x")).unwrap_err();
        assert!(a.to_string().contains("unknown option -b=x"), "{a}");
        let a = parse(&args("c2")).unwrap();
        assert_eq!(
            (a.bundle, a.mem_mib, a.cpus),
            (".".into(), DEFAULT_MEM_MIB, DEFAULT_CPUS)
        );
    }

    #[test]
    fn bad_command_lines_are_refused() {
        for (line, want) in [
            ("", "id is missing"),
            ("--bundle", "--bundle needs a value"),
            ("--mem lots c", "--mem \"lots\""),
            ("--frobnicate c", "unknown option --frobnicate"),
            ("a b", "unexpected argument \"b\""),
        ] {
            let e = format!("{:#}", parse(&args(line)).unwrap_err());
            assert!(e.contains(want), "{line}: {e}");
        }
    }
}
