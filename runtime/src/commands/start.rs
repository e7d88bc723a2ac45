//! `hull start ID`: runs the program of a created container.

use anyhow::bail;

use super::container::Container;
use crate::Global;
use runtime::host::hooks::HookKind;
use runtime::state::ContainerStatus;

pub fn main(global: &Global, args: &liboci_cli::Start) -> anyhow::Result<i32> {
    let id = args.container_id.as_str();
    let c = Container::load(global, id)?;
    match c.status {
        ContainerStatus::Created if !c.state.hull.foreground => {}
        ContainerStatus::Created | ContainerStatus::Creating => {
            bail!("cannot start a container that is still being created")
        }
        ContainerStatus::Stopped => bail!("cannot start a container that has stopped"),
        ContainerStatus::Running | ContainerStatus::Paused => {
            bail!("cannot start an already running container")
        }
    }
    let mut agent = c.agent(global)?;
    super::hooks::run(&c, HookKind::StartContainer)?;
    agent.start(id, None)?;
    let mut c = c;
    c.state = c.store.set_status(id, ContainerStatus::Running)?;
    c.status = c.state.status;
    super::hooks::run_warn(global, &c, HookKind::Poststart);
    Ok(0)
}
