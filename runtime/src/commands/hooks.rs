//! The spec's hooks at the steps the commands own, with the container's
//! OCI state on their stdin. They all run on the host (the hook programs
//! are host paths): `createRuntime`, `createContainer` and `prestart` once
//! the container exists in its VM, `startContainer` right before the start,
//! `poststart` after it, `poststop` when the container is deleted.

use runtime::bundle::spec::Hooks;
use runtime::host::hooks::{run_hooks, run_hooks_warn, HookKind};
use runtime::state::{ContainerState, StateStore};

use super::container::Container;
use crate::Global;

/// The OCI state JSON of `state`.
fn state_json(state: &ContainerState) -> Vec<u8> {
    serde_json::to_vec(&state.oci(String::new())).unwrap_or_default()
}

/// The hooks of `kind` in `hooks`, failing at the first failure.
pub fn run_spec(hooks: &Hooks, kind: HookKind, state: &ContainerState) -> Result<(), String> {
    run_hooks(kind, hooks.get(kind), &state_json(state)).map_err(|e| e.to_string())
}

/// The create-time hooks, in the spec's order.
pub fn run_create_hooks(hooks: &Hooks, store: &StateStore, id: &str) -> Result<(), String> {
    let state = store.load(id).map_err(|e| e.to_string())?;
    for kind in [
        HookKind::CreateRuntime,
        HookKind::CreateContainer,
        HookKind::Prestart,
    ] {
        run_spec(hooks, kind, &state)?;
    }
    Ok(())
}

/// The container's hooks, from the spec it was created with.
fn hooks_of(c: &Container) -> anyhow::Result<Hooks> {
    let spec = c.spec()?;
    Hooks::from_spec(spec.hooks().as_ref()).map_err(anyhow::Error::msg)
}

/// Hooks of a kind that fail the operation.
pub fn run(c: &Container, kind: HookKind) -> anyhow::Result<()> {
    let hooks = hooks_of(c)?;
    run_spec(&hooks, kind, &c.state).map_err(anyhow::Error::msg)
}

/// Hooks of a kind whose failures are only logged (`poststart`, `poststop`).
pub fn run_warn(global: &Global, c: &Container, kind: HookKind) {
    match hooks_of(c) {
        Ok(hooks) => warn_all(global, &hooks, kind, &c.state),
        Err(e) => global.warn(&format!("{kind} hooks not run: {e}")),
    }
}

pub fn warn_all(global: &Global, hooks: &Hooks, kind: HookKind, state: &ContainerState) {
    for e in run_hooks_warn(kind, hooks.get(kind), &state_json(state)) {
        global.warn(&e.to_string());
    }
}
