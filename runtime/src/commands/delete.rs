//! `hull delete [--force] ID`: removes a stopped (or created) container:
//! its sandbox (killed if it still runs), cgroups and state directory.
//! `--force` deletes a running or paused one too.

use std::time::Duration;

use anyhow::{bail, Context};

use super::container::Container;
use crate::Global;
use runtime::host::cgroups;
use runtime::host::hooks::HookKind;
use runtime::state::{remove_state_dir, ContainerStatus};

/// How long a killed sandbox may take to go.
const KILL_TIMEOUT: Duration = Duration::from_secs(30);

pub fn main(global: &Global, args: &liboci_cli::Delete) -> anyhow::Result<i32> {
    let id = args.container_id.as_str();
    let force = args.force;
    let c = match Container::load(global, id) {
        Ok(c) => c,
        // Like runc: with --force an absent container is deleted already
        // (a directory without state.json, from an aborted create, goes).
        Err(e) if force && is_not_exist(&e) => {
            let dir = runtime::state::StateStore::new(&global.root).dir(id)?;
            remove_state_dir(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
            return Ok(0);
        }
        Err(e) => return Err(e),
    };
    if !c.status.can_delete(force) {
        bail!(
            "cannot delete container {id} that is not stopped: {}",
            c.status
        );
    }
    // The VMM dies with the sandbox process (parent-death signal); killing
    // both covers a VMM that outlived it anyway.
    for p in [c.sandbox_process()?, c.vmm_process()?]
        .into_iter()
        .flatten()
    {
        p.signal(libc::SIGKILL)?;
        if !p.wait_exit(KILL_TIMEOUT) {
            bail!("process {} of container {id} did not die", p.pid);
        }
    }
    let mut stopped = c.state.clone();
    stopped.status = ContainerStatus::Stopped;
    let stopped = Container {
        state: stopped,
        status: ContainerStatus::Stopped,
        store: c.store.clone(),
    };
    super::hooks::run_warn(global, &stopped, HookKind::Poststop);
    let cgroups = cgroups::remove(&c.state.hull.cgroups);
    // A socket outside the state directory (see vsock_socket_path).
    let _ = std::fs::remove_file(&c.state.hull.vsock_socket);
    let dir = c.store.dir(id)?;
    remove_state_dir(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    cgroups?;
    Ok(0)
}

fn is_not_exist(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<runtime::state::StateError>(),
        Some(runtime::state::StateError::NotExist(_))
    )
}
