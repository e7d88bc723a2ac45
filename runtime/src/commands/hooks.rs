//! The spec's hooks at the steps the commands own, with the container's
//! OCI state on their stdin. They all run on the host (the hook programs
//! are host paths): `createRuntime`, `createContainer` and `prestart` once
//! the container exists in its VM, `startContainer` right before the start,
//! `poststart` after it, `poststop` when the container is deleted.

use runtime::bundle::spec::Spec;
use runtime::bundle::Bundle;
use runtime::host::hooks::{run_hooks, run_hooks_warn, HookKind};
use runtime::state::{ContainerState, StateStore};

use super::container::Container;
use crate::Global;

/// The OCI state JSON of `state`.
fn state_json(state: &ContainerState) -> Vec<u8> {
    serde_json::to_vec(&state.oci(String::new())).unwrap_or_default()
}

/// The hooks of `kind` in `spec`, failing at the first failure.
pub fn run_spec(spec: &Spec, kind: HookKind, state: &ContainerState) -> Result<(), String> {
    run_hooks(kind, spec.hooks(kind), &state_json(state)).map_err(|e| e.to_string())
}

/// The create-time hooks, in the spec's order.
pub fn run_create_hooks(spec: &Spec, store: &StateStore, id: &str) -> Result<(), String> {
    let state = store.load(id).map_err(|e| e.to_string())?;
    for kind in [
        HookKind::CreateRuntime,
        HookKind::CreateContainer,
        HookKind::Prestart,
    ] {
        run_spec(spec, kind, &state)?;
    }
    Ok(())
}

/// Loads the container's bundle spec (hooks are read from it when used).
fn spec_of(c: &Container) -> anyhow::Result<Spec> {
    Ok(Bundle::load(&c.state.bundle)?.spec)
}

/// Hooks of a kind that fail the operation.
pub fn run(c: &Container, kind: HookKind) -> anyhow::Result<()> {
    let spec = spec_of(c)?;
    run_spec(&spec, kind, &c.state).map_err(anyhow::Error::msg)
}

/// Hooks of a kind whose failures are only logged (`poststart`, `poststop`).
pub fn run_warn(global: &Global, c: &Container, kind: HookKind) {
    // A bundle that is gone (deleted before `delete`) has no hooks to run.
    let Ok(spec) = spec_of(c) else { return };
    warn_all(global, &spec, kind, &c.state);
}

pub fn warn_all(global: &Global, spec: &Spec, kind: HookKind, state: &ContainerState) {
    for e in run_hooks_warn(kind, spec.hooks(kind), &state_json(state)) {
        global.warn(&e.to_string());
    }
}
