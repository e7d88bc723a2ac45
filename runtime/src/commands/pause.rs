//! `hull pause ID` / `hull resume ID`: freezes and thaws the container's
//! cgroup in its guest (`cgroup.freeze`), as runc freezes the container's
//! cgroup. The VM itself keeps running, so `kill` (delivered by the kernel
//! at the thaw; SIGKILL at once), `state`, `events` and `ps` keep working on a
//! paused container, and `exec` is refused as runc refuses it.

use crate::Global;

pub fn pause(global: &Global, args: &liboci_cli::Pause) -> anyhow::Result<i32> {
    super::container::load(global, &args.container_id)?.pause()?;
    Ok(0)
}

pub fn resume(global: &Global, args: &liboci_cli::Resume) -> anyhow::Result<i32> {
    super::container::load(global, &args.container_id)?.resume()?;
    Ok(0)
}
