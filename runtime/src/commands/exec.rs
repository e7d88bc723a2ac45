//! `hull exec [OPTIONS] ID [COMMAND ARGS...]`: runs another process in a
//! running container: the process in `--process FILE` (an OCI process
//! JSON), or the container's own process with COMMAND and the overrides of
//! `--env`, `--cwd`, `--user`, `--tty`, … applied, as runc does.
//!
//! In the foreground it relays stdio and exits with the process's status.
//! With `--detach` (or `--console-socket`) the work happens in an *exec
//! process* (`hull` re-executed, see [`runtime::process`]) that holds the
//! stdio and exits like the process; `--pid-file` gets its pid.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use super::container::Container;
use crate::Global;
use agent_protocol::container::Process;
use runtime::bundle::{spec, translate_process, Bundle};
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
    let c = Container::load(global, &id)?;
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
    match (process.terminal, &console) {
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
    let mut process_child = pending.wait_ready()?;
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
        let path = path.display();
        let text = std::fs::read_to_string(parsed.process.as_deref().unwrap_or(Path::new("")))
            .with_context(|| format!("cannot read {path}"))?;
        let p: spec::Process =
            serde_json::from_str(&text).with_context(|| format!("{path} is malformed"))?;
        if p.args.is_empty() {
            bail!("args must not be empty");
        }
        return Ok(translate_process(p));
    }
    let command = &parsed.command;
    if command.is_empty() {
        bail!("exec: no command given: add COMMAND or --process FILE");
    }
    let bundle = Bundle::load(&c.state.bundle)?;
    let mut p = bundle.container_config(c.id()).process;
    p.args = command.to_vec();
    p.terminal = parsed.tty;
    p.console_size = None;
    for (key, value) in &parsed.env {
        p.env.retain(|e| e.split('=').next() != Some(key.as_str()));
        p.env.push(format!("{key}={value}"));
    }
    if let Some(cwd) = &parsed.cwd {
        if !cwd.is_absolute() {
            bail!("--cwd {cwd:?} is not an absolute path");
        }
        p.cwd = cwd.display().to_string();
    }
    if let Some((uid, gid)) = parsed.user {
        p.user.uid = uid;
        if let Some(gid) = gid {
            p.user.gid = gid;
        }
    }
    p.user
        .additional_gids
        .extend(parsed.additional_gids.iter().copied());
    if let Some(caps) = p.capabilities.as_mut() {
        for cap in &parsed.cap {
            for set in [&mut caps.bounding, &mut caps.effective, &mut caps.permitted] {
                if !set.contains(cap) {
                    set.push(cap.clone());
                }
            }
        }
    }
    if parsed.no_new_privs {
        p.no_new_privileges = true;
    }
    Ok(p)
}
