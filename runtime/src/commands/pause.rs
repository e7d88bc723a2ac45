//! `hull pause ID` / `hull resume ID`: freezes and thaws the container's
//! cgroup in its guest (`cgroup.freeze`), as runc freezes the container's
//! cgroup. The VM itself keeps running, so `kill` (delivered by the kernel
//! at the thaw; SIGKILL at once), `state`, `events` and `ps` keep working on a
//! paused container, and `exec` is refused as runc refuses it.

use anyhow::bail;

use super::container::Container;
use crate::Global;
use runtime::state::ContainerStatus;

pub fn pause(global: &Global, args: &liboci_cli::Pause) -> anyhow::Result<i32> {
    let id = args.container_id.as_str();
    switch(
        global,
        id,
        ContainerStatus::can_pause,
        true,
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
        false,
        ContainerStatus::Running,
    )
}

fn switch(
    global: &Global,
    id: &str,
    allowed: fn(ContainerStatus) -> bool,
    frozen: bool,
    to: ContainerStatus,
) -> anyhow::Result<i32> {
    let c = Container::load(global, id)?;
    c.require(allowed)?;
    c.agent(global)?.freeze(id, frozen)?;
    c.store.update(id, |s| {
        s.status = s.status.transition(to)?;
        Ok(())
    })?;
    Ok(0)
}
