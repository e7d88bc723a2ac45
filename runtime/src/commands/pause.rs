//! `hull pause ID` / `hull resume ID`: stops and resumes the container's
//! VM: its VMM (every vCPU and device thread) gets SIGSTOP and SIGCONT.

use anyhow::{bail, Context};

use super::container::Container;
use crate::Global;
use runtime::state::ContainerStatus;

pub fn pause(global: &Global, args: &liboci_cli::Pause) -> anyhow::Result<i32> {
    let id = args.container_id.as_str();
    switch(
        global,
        id,
        ContainerStatus::can_pause,
        libc::SIGSTOP,
        ContainerStatus::Paused,
    )
}

pub fn resume(global: &Global, args: &liboci_cli::Resume) -> anyhow::Result<i32> {
    let id = args.container_id.as_str();
    let c = Container::load(global, id)?;
    if c.status == ContainerStatus::Running {
        bail!("container {id} is not paused");
    }
    switch(
        global,
        id,
        ContainerStatus::can_resume,
        libc::SIGCONT,
        ContainerStatus::Running,
    )
}

fn switch(
    global: &Global,
    id: &str,
    allowed: fn(ContainerStatus) -> bool,
    signal: i32,
    to: ContainerStatus,
) -> anyhow::Result<i32> {
    let c = Container::load(global, id)?;
    c.require(allowed)?;
    let vmm = c
        .vmm_process()?
        .with_context(|| format!("the VM of container {id} is gone"))?;
    vmm.signal(signal)?;
    let mut pending = Vec::new();
    c.store.update(id, |s| {
        s.status = s.status.transition(to)?;
        pending = std::mem::take(&mut s.hull.pending_signals);
        Ok(())
    })?;
    // Back to running: deliver what `kill` held while the VM was stopped.
    // The container runs again whatever happens to them: one that cannot be
    // delivered (the workload already exited of an earlier one) is a warning.
    if !pending.is_empty() {
        let mut agent = match c.agent() {
            Ok(agent) => agent,
            Err(e) => {
                global.warn(&format!("signals held while paused not delivered: {e:#}"));
                return Ok(0);
            }
        };
        for p in pending {
            if let Err(e) = agent.signal(id, None, p.signal, p.all) {
                global.warn(&format!("signal {} held while paused: {e:#}", p.signal));
            }
        }
    }
    Ok(0)
}
