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
    // A run from an image (`hull run --image -d`) leaves its run directory
    // (overlay root, upper layer) for this delete.
    let run_dir = c.spec().ok().and_then(|spec| {
        let annotations = spec.annotations().clone().unwrap_or_default();
        let annotated = annotations.get(runtime::from_image::RUN_DIR_ANNOTATION);
        runtime::from_image::owned_run_dir(
            &super::run_image::store(),
            id,
            annotated.map(String::as_str),
        )
    });
    for warning in c.delete(force)? {
        global.warn(&warning);
    }
    if let Some(dir) = run_dir {
        runtime::from_image::remove_run(id, &dir)?;
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
