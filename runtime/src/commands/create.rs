//! `hull create [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] ID`:
//! boots the container's sandbox and creates the container, stopped before
//! its program runs; `hull start` runs it.
//!
//! The work happens in the *sandbox process*: `hull` re-executed as a child
//! (see [`runtime::process`]) that holds the caller's stdio (or, with
//! `process.terminal`, a new pty whose master went to the console socket),
//! owns the VM, and exits with the workload's status. This command returns
//! once the sandbox process reports the container created, leaving its pid
//! in `--pid-file`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::args::{self, flag, opt, Flag};
use crate::Global;
use runtime::bundle::Bundle;
use runtime::host::resources::{vm_size, VmDefaults};
use runtime::process::console::Pty;
use runtime::process::sync::{self, ChildStdio, Notifier};
use runtime::process::{exit, pidfile};
use runtime::sandbox::run::{self, RunError, RunOptions, DEFAULT_OUTPUT_GRACE};
use runtime::sandbox::stdio::HostStdio;
use runtime::sandbox::{Artifacts, SandboxConfig, DEFAULT_CPUS, DEFAULT_MEM_MIB};
use runtime::state::StateStore;

pub const USAGE: &str =
    "usage: hull create [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] ID";

pub const FLAGS: &[Flag] = &[
    opt(&["-b", "--bundle"]),
    opt(&["--pid-file"]),
    opt(&["--console-socket"]),
    opt(&["--preserve-fds"]),
    flag(&["--no-pivot"]),
    flag(&["--no-new-keyring"]),
];

/// What `create` (and `run`) were asked for.
#[derive(Debug, Clone)]
pub struct CreateArgs {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
}

impl CreateArgs {
    pub fn from(parsed: &args::Parsed, command: &str) -> anyhow::Result<Self> {
        if let Some(n) = parsed.number::<u32>("--preserve-fds")? {
            if n > 0 {
                bail!("--preserve-fds is not supported: descriptors cannot be passed into a VM");
            }
        }
        Ok(Self {
            id: parsed.id(command)?.to_owned(),
            bundle: parsed.value("--bundle").unwrap_or(".").into(),
            pid_file: parsed.value("--pid-file").map(PathBuf::from),
            console_socket: parsed.value("--console-socket").map(PathBuf::from),
        })
    }
}

/// Runs `create`; as the sandbox process (`child`), builds the sandbox.
pub fn main(global: &Global, argv: &[String], child: Option<&mut Notifier>) -> anyhow::Result<i32> {
    let parsed = args::parse(argv, FLAGS, false)?;
    let create = CreateArgs::from(&parsed, "create")?;
    match child {
        Some(notifier) => sandbox_process(global, &create, notifier),
        None => {
            let pid = spawn_sandbox(global, &create)?;
            if let Some(path) = &create.pid_file {
                write_pid_file(path, pid)?;
            }
            Ok(0)
        }
    }
}

/// Checks what can be checked before anything is made, then starts the
/// sandbox process and waits for it to report; returns its pid.
pub fn spawn_sandbox(global: &Global, create: &CreateArgs) -> anyhow::Result<i32> {
    let bundle = Bundle::load(&create.bundle)?;
    for w in &bundle.warnings {
        global.warn(w);
    }
    let resources = bundle.resources();
    let defaults = VmDefaults {
        mem_mib: DEFAULT_MEM_MIB,
        cpus: DEFAULT_CPUS,
    };
    vm_size(resources.as_ref(), defaults)?;
    let store = StateStore::new(&global.root);
    let dir = store.dir(&create.id)?;
    if dir.exists() {
        bail!("container with id exists: {}", create.id);
    }
    Artifacts::locate()?;
    let stdio = match (bundle.terminal(), &create.console_socket) {
        (true, Some(socket)) => {
            let pty = Pty::open()?;
            pty.send_master(socket)?;
            ChildStdio::Terminal(pty.slave)
        }
        (true, None) => {
            bail!("cannot allocate tty if hull will detach without setting console socket")
        }
        (false, Some(_)) => {
            bail!("cannot use console socket if hull will not detach or allocate tty")
        }
        (false, None) => ChildStdio::Inherit,
    };
    let exe = std::env::current_exe().context("cannot find the hull executable")?;
    let mut argv = global.to_args();
    argv.push("create".into());
    argv.extend(["--bundle".into(), path_arg(&bundle.dir)]);
    argv.push(create.id.clone());
    let pending = sync::spawn(&exe, &argv, "sandbox", stdio)?;
    let pid = pending.pid();
    // Success leaves the child running: its reaper is our caller's.
    pending.wait_ready()?;
    Ok(pid)
}

/// The sandbox for container `id` of `bundle`: the VM sized from
/// `linux.resources` (else `defaults`), cgroups as `--systemd-cgroup` says.
pub fn sandbox_config(
    global: &Global,
    id: &str,
    bundle: &Bundle,
    defaults: VmDefaults,
) -> anyhow::Result<SandboxConfig> {
    let (mem_mib, cpus) = vm_size(bundle.resources().as_ref(), defaults)?;
    let mut sandbox = SandboxConfig::new(id, Artifacts::locate()?);
    sandbox.state_root = global.root.clone();
    sandbox.mem_mib = mem_mib;
    sandbox.cpus = cpus;
    sandbox.systemd_cgroup = global.systemd_cgroup;
    Ok(sandbox)
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

/// Writes the pid file; on failure the new container is killed (the caller
/// would never learn its pid) and the error returned.
pub fn write_pid_file(path: &Path, pid: i32) -> anyhow::Result<()> {
    pidfile::write(path, pid).with_context(|| {
        // SAFETY: kill has no memory effects; `pid` is our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        format!("cannot write the pid file {}", path.display())
    })
}

/// The sandbox process: boots the VM, creates the container, reports to
/// `notifier`, relays stdio until the workload exits, and exits like it.
fn sandbox_process(
    global: &Global,
    create: &CreateArgs,
    notifier: &mut Notifier,
) -> anyhow::Result<i32> {
    let bundle = Bundle::load(&create.bundle)?;
    let mut sandbox = sandbox_config(
        global,
        &create.id,
        &bundle,
        VmDefaults {
            mem_mib: DEFAULT_MEM_MIB,
            cpus: DEFAULT_CPUS,
        },
    )?;
    sandbox.detached = true;
    let opts = RunOptions {
        sandbox,
        output_grace: DEFAULT_OUTPUT_GRACE,
        forward_signals: true,
    };
    let mut lifecycle = super::lifecycle::Detached {
        hooks: &bundle.hooks,
        notifier,
    };
    match run::run_with(&opts, &bundle, HostStdio::inherit()?, &mut lifecycle) {
        Ok(outcome) => exit::exit_like(outcome.status),
        Err(RunError::Interrupted(signal)) => exit::die_of(signal),
        Err(e) => Err(e.into()),
    }
}
