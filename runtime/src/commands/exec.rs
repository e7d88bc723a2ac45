//! `hull exec [OPTIONS] ID [COMMAND ARGS...]`: runs another process in a
//! running container: the process in `--process FILE` (an OCI process
//! JSON), or the container's own process with COMMAND and the overrides of
//! `--env`, `--cwd`, `--user`, `--tty`, … applied, as runc does.
//!
//! In the foreground it relays stdio and exits with the process's status.
//! With `--detach` (or `--console-socket`) the work happens in an *exec
//! process* (`hull` re-executed, see [`runtime::process`]) that holds the
//! stdio and exits like the process; `--pid-file` gets its pid.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use crate::Global;
use agent_protocol::container::Process;
use oci_spec::runtime::{Capabilities, Capability};
use runtime::bundle::spec;
use runtime::container::Container;
use runtime::process::console::Pty;
use runtime::process::sync::{self, ChildStdio, Notifier};
use runtime::process::{exit, pidfile};
use runtime::sandbox::exec::{self, ExecOptions};
use runtime::sandbox::stdio::HostStdio;
use runtime::state::ContainerStatus;

/// Runs `exec` (runc's flags, liboci-cli's definition); as the exec
/// process (`child`), runs the process and exits like it.
pub fn main(
    global: &Global,
    parsed: &liboci_cli::Exec,
    child: Option<&mut Notifier>,
) -> anyhow::Result<i32> {
    let id = parsed.container_id.clone();
    super::create::refuse_preserve_fds(parsed.preserve_fds)?;
    let c = super::container::load(global, &id)?;
    if c.status == ContainerStatus::Stopped {
        bail!("cannot exec in a stopped container");
    }
    c.require(ContainerStatus::can_exec)?;
    let process = build_process(&c, parsed)?;
    if let Some(notifier) = child {
        return in_process(&c, process, Some(notifier));
    }
    let detach = parsed.detach;
    let console = parsed.console_socket.clone();
    match (process.terminal().unwrap_or(false), &console) {
        (true, None) if detach => {
            bail!("cannot allocate tty if hull will detach without setting console socket")
        }
        (false, Some(_)) => {
            bail!("cannot use console socket if hull will not detach or allocate tty")
        }
        _ => {}
    }
    if !detach && console.is_none() {
        return in_process(&c, process, None);
    }
    let stdio = match &console {
        Some(socket) => {
            let pty = Pty::open()?;
            pty.send_master(socket)?;
            ChildStdio::Terminal(pty.slave)
        }
        None => ChildStdio::Inherit,
    };
    let exe = std::env::current_exe().context("cannot find the hull executable")?;
    // The exec process parses this very command line again.
    let child_argv = global.argv.clone();
    let pending = sync::spawn(&exe, &child_argv, "exec", stdio)?;
    let pid = pending.pid();
    let (mut process_child, _) = pending.wait_ready()?;
    if let Some(path) = &parsed.pid_file {
        pidfile::write(path, pid).with_context(|| {
            let _ = process_child.kill();
            format!("cannot write the pid file {}", path.display())
        })?;
    }
    if detach {
        return Ok(0);
    }
    let status = process_child.wait()?;
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (_, Some(signal)) => exit::die_of(signal),
        (Some(code), None) => Ok(code),
        (None, None) => Ok(255),
    }
}

/// Runs the exec here, relaying this process's stdio. In the foreground
/// returns its status; as an exec process (`notifier`), reports readiness
/// once it runs and exits like it.
fn in_process(
    c: &Container,
    process: Process,
    mut notifier: Option<&mut Notifier>,
) -> anyhow::Result<i32> {
    let foreground = notifier.is_none();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let exec_id = format!("exec-{}-{nanos}", std::process::id());
    let opts = ExecOptions {
        vsock: &c.state.hull.vsock_socket,
        container_id: c.id(),
        exec_id: &exec_id,
        output_grace: runtime::sandbox::run::DEFAULT_OUTPUT_GRACE,
        forward_signals: true,
    };
    let stdio = HostStdio::inherit()?;
    let status = exec::exec(&opts, process, stdio, || {
        if let Some(n) = notifier.as_mut() {
            n.ready();
        }
    })?;
    if foreground {
        return Ok(status.shell_code());
    }
    exit::exit_like(status)
}

/// The process to run: `--process FILE`, or the container's own process
/// with the command line's overrides.
fn build_process(c: &Container, parsed: &liboci_cli::Exec) -> anyhow::Result<Process> {
    if let Some(path) = &parsed.process {
        let shown = path.display();
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {shown}"))?;
        let p = spec::parse_process(&bytes).with_context(|| format!("{shown} is malformed"))?;
        if p.args().as_ref().is_none_or(|a| a.is_empty()) {
            bail!("args must not be empty");
        }
        return Ok(p);
    }
    let command = &parsed.command;
    if command.is_empty() {
        bail!("exec: no command given: add COMMAND or --process FILE");
    }
    let container_spec = c.spec()?;
    let mut p = container_spec
        .process()
        .clone()
        .context("the container's spec has no process")?;
    p.set_args(Some(command.to_vec()));
    p.set_terminal(Some(parsed.tty));
    p.set_console_size(None);
    let mut env = p.env().clone().unwrap_or_default();
    for (key, value) in &parsed.env {
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(format!("{key}={value}"));
    }
    p.set_env(Some(env));
    if let Some(cwd) = &parsed.cwd {
        if !cwd.is_absolute() {
            bail!("--cwd {cwd:?} is not an absolute path");
        }
        p.set_cwd(cwd.clone());
    }
    let user = p.user_mut();
    if let Some((uid, gid)) = parsed.user {
        user.set_uid(uid);
        if let Some(gid) = gid {
            user.set_gid(gid);
        }
    }
    let mut gids = user.additional_gids().clone().unwrap_or_default();
    gids.extend(parsed.additional_gids.iter().copied());
    user.set_additional_gids(Some(gids).filter(|g| !g.is_empty()));
    if let Some(mut caps) = p.capabilities().clone() {
        for name in &parsed.cap {
            let cap = parse_capability(name)?;
            let add = |set: &Option<Capabilities>| {
                let mut set = set.clone().unwrap_or_default();
                set.insert(cap);
                Some(set)
            };
            let (b, e, pm) = (
                add(caps.bounding()),
                add(caps.effective()),
                add(caps.permitted()),
            );
            caps.set_bounding(b).set_effective(e).set_permitted(pm);
        }
        p.set_capabilities(Some(caps));
    }
    if parsed.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

/// A capability by its runc spelling (`CAP_NET_ADMIN`, case-insensitive).
fn parse_capability(name: &str) -> anyhow::Result<Capability> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    bare.parse()
        .map_err(|_| anyhow::anyhow!("--cap {name:?}: unknown capability"))
}
