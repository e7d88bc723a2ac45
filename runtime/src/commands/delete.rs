//! `hull delete [--force] ID`: removes a stopped (or created) container:
//! its sandbox (killed if it still runs), cgroups and state directory.
//! `--force` deletes a running or paused one too
//! ([`runtime::container::Container::delete`]).

use crate::Global;

pub fn main(global: &Global, args: &liboci_cli::Delete) -> anyhow::Result<i32> {
    let id = args.container_id.as_str();
    let force = args.force;
    let c = match super::container::load(global, id) {
        Ok(c) => c,
        // Like runc: with --force an absent container is deleted already
        // (a directory without state.json, from an aborted create, goes).
        Err(e) if force && is_not_exist(&e) => {
            runtime::container::delete_absent(&global.root, id)?;
            return Ok(0);
        }
        Err(e) => return Err(e),
    };
    for warning in c.delete(force)? {
        global.warn(&warning);
    }
    Ok(0)
}

fn is_not_exist(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<runtime::container::ContainerError>(),
        Some(runtime::container::ContainerError::State(
            runtime::state::StateError::NotExist(_)
        ))
    )
}
