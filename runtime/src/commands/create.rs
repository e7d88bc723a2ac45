//! `hull create [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] ID`:
//! boots the container's sandbox and creates the container, stopped before
//! its program runs; `hull start` runs it.
//!
//! The work happens in the *sandbox process*: `hull` re-executed as a child
//! (see [`runtime::process`]) that holds the caller's stdio (or, with
//! `process.terminal`, a new pty whose master went to the console socket),
//! owns the VM, and ends the container's stand-in (its pid on the host, see
//! [`runtime::process::standin`]) with the workload's status. This command
//! returns once the sandbox process reports the container created, leaving
//! the stand-in's pid in `--pid-file`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::Global;
use runtime::bundle::pod::{self, PodRole};
use runtime::bundle::Bundle;
use runtime::config::Config;
use runtime::host::resources::vm_size;
use runtime::process::console::Pty;
use runtime::process::sync::{self, ChildStdio, Notifier};
use runtime::process::{exit, pidfile};
use runtime::sandbox::member::PodSandbox;
use runtime::sandbox::run::{self, RunError, RunOptions};
use runtime::sandbox::stdio::HostStdio;
use runtime::sandbox::{Artifacts, SandboxConfig};
use runtime::state::StateStore;

/// What `create` (and `run`) were asked for.
#[derive(Debug, Clone)]
pub struct CreateArgs {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
}

impl CreateArgs {
    /// `--no-pivot` and `--no-new-keyring` are accepted and mean nothing
    /// for a VM; descriptors cannot be passed into one.
    pub fn from(args: &liboci_cli::Create) -> anyhow::Result<Self> {
        refuse_preserve_fds(args.preserve_fds)?;
        Ok(Self {
            id: args.container_id.clone(),
            bundle: args.bundle.clone(),
            pid_file: args.pid_file.clone(),
            console_socket: args.console_socket.clone(),
        })
    }
}

/// `--preserve-fds N`: only 0.
pub fn refuse_preserve_fds(n: i32) -> anyhow::Result<()> {
    if n != 0 {
        bail!("--preserve-fds is not supported: descriptors cannot be passed into a VM");
    }
    Ok(())
}

/// The configuration for a container of `bundle`: the file's values with
/// the spec's `io.hull.*` annotations applied.
pub fn container_config(global: &Global, bundle: &Bundle) -> anyhow::Result<Config> {
    let annotations = bundle
        .spec
        .annotations()
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()));
    Ok(global.config()?.with_annotations(annotations)?)
}

/// Runs `create`; as the sandbox process (`child`), builds the sandbox.
pub fn main(
    global: &Global,
    args: &liboci_cli::Create,
    child: Option<&mut Notifier>,
) -> anyhow::Result<i32> {
    let create = CreateArgs::from(args)?;
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
    let config = container_config(global, &bundle)?;
    vm_size(bundle.vm_resources()?.as_ref(), config.vm_defaults())?;
    pod_of(global, &bundle)?;
    let store = StateStore::new(&global.root);
    let dir = store.dir(&create.id)?;
    if dir.exists() {
        bail!("container with id exists: {}", create.id);
    }
    Artifacts::locate_configured(config.vm.kernel.as_deref(), config.vm.initramfs.as_deref())?;
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
    let sandbox = pending.pid();
    // Success leaves the child running: its reaper is our caller's, as is
    // the container's stand-in, whose pid it reports.
    let (_, pid) = pending.wait_ready()?;
    Ok(pid.unwrap_or(sandbox))
}

/// The sandbox for container `id` of `bundle`: the VM sized from
/// `linux.resources` (else `config`'s defaults), booted from `config`'s
/// kernel and initramfs with its timeouts, cgroups as `--systemd-cgroup`
/// says.
pub fn sandbox_config(
    global: &Global,
    id: &str,
    bundle: &Bundle,
    config: &Config,
) -> anyhow::Result<SandboxConfig> {
    let (mem_mib, cpus) = vm_size(bundle.vm_resources()?.as_ref(), config.vm_defaults())?;
    let artifacts =
        Artifacts::locate_configured(config.vm.kernel.as_deref(), config.vm.initramfs.as_deref())?;
    let mut sandbox = SandboxConfig::new(id, artifacts);
    sandbox.boot_timeout = config.boot_timeout();
    sandbox.power_off_timeout = config.power_off_timeout();
    sandbox.state_root = global.root.clone();
    sandbox.mem_mib = mem_mib;
    sandbox.cpus = cpus;
    sandbox.systemd_cgroup = global.systemd_cgroup;
    Ok(sandbox)
}

/// The pod sandbox whose VM a container of `bundle` joins, if it is a
/// pod's app container (see [`runtime::bundle::pod`]).
pub fn pod_of(global: &Global, bundle: &Bundle) -> anyhow::Result<Option<PodSandbox>> {
    let reference = match pod::role(&bundle.spec)? {
        PodRole::Own => return Ok(None),
        PodRole::Member(r) => r,
    };
    let store = StateStore::new(&global.root);
    if let Some(found) = PodSandbox::find(&store, &reference)? {
        let overhead = container_config(global, bundle)?.vm.memory_overhead_mib;
        found.check_fits(bundle.resources().as_ref(), overhead.into())?;
        return Ok(Some(found));
    }
    // A path into a process that is no hull container's: only its network
    // namespace can be entered (on the host); the others would have to be
    // the guest's.
    let linux = bundle.spec.linux().as_ref();
    for ns in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        let into = ns.path().as_deref().and_then(pod::proc_ns_pid);
        if let (Some(pid), false) = (
            into,
            ns.typ() == oci_spec::runtime::LinuxNamespaceType::Network,
        ) {
            bail!(
                "linux.namespaces: the {} namespace of process {pid} cannot be joined: it is no hull container's, and a container in a VM shares namespaces only with its pod",
                ns.typ()
            );
        }
    }
    Ok(None)
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

/// Writes the pid file; on failure the new container is killed (the caller
/// would never learn its pid) and the error returned.
pub fn write_pid_file(path: &Path, pid: i32) -> anyhow::Result<()> {
    pidfile::write(path, pid).with_context(|| {
        // `pid` is our own child.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
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
    let config = container_config(global, &bundle)?;
    let pod = pod_of(global, &bundle)?;
    let mut sandbox = sandbox_config(global, &create.id, &bundle, &config)?;
    sandbox.detached = true;
    sandbox.standin = Some(std::env::current_exe().context("cannot find the hull executable")?);
    let opts = RunOptions {
        sandbox,
        output_grace: config.output_grace(),
        forward_signals: true,
        pod,
    };
    let mut lifecycle = super::lifecycle::Detached {
        hooks: &bundle.hooks,
        notifier,
    };
    match run::run_with(&opts, &bundle, HostStdio::inherit()?, &mut lifecycle) {
        Ok(outcome) => match outcome.standin {
            // The stand-in is the container's pid: it ends like the workload.
            Some(standin) => {
                standin.release(outcome.status);
                Ok(0)
            }
            None => exit::exit_like(outcome.status),
        },
        Err(RunError::Interrupted(signal)) => exit::die_of(signal),
        Err(e) => Err(e.into()),
    }
}
