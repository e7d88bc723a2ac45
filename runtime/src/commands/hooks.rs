//! The spec's hooks at the steps the commands own, with the container's
//! OCI state on their stdin. They all run on the host (the hook programs
//! are host paths): `prestart` and `createRuntime` before the VM boots,
//! `createContainer` once the container exists in its VM, `startContainer` right before the start,
//! `poststart` after it, `poststop` when the container is deleted (those of
//! an existing container run from [`runtime::container::Container`]).

use runtime::bundle::spec::Hooks;
use runtime::host::hooks::{run_hooks, run_hooks_warn, HookKind};
use runtime::state::{ContainerState, ContainerStatus, StateStore};

use crate::Global;

/// The OCI state JSON of `state`.
fn state_json(state: &ContainerState) -> Vec<u8> {
    serde_json::to_vec(&state.oci(String::new())).unwrap_or_default()
}

/// The hooks of `kind` in `hooks`, failing at the first failure.
pub fn run_spec(hooks: &Hooks, kind: HookKind, state: &ContainerState) -> Result<(), String> {
    run_hooks(kind, hooks.get(kind), &state_json(state)).map_err(|e| e.to_string())
}

/// The hooks of `kinds` in that order, with the saved state of `id`.
fn run_kinds(
    hooks: &Hooks,
    store: &StateStore,
    id: &str,
    kinds: &[HookKind],
) -> Result<(), String> {
    let state = store.load(id).map_err(|e| e.to_string())?;
    kinds
        .iter()
        .try_for_each(|&kind| run_spec(hooks, kind, &state))
}

/// `prestart` then `createRuntime` (runc's order), in the container's
/// network namespace before hull wires it and boots the VM: Docker's
/// `prestart` hook puts the veth there. `prestart` is told status
/// `created` (its runtime environment exists; crun's, and what
/// runtime-tools checks), `createRuntime` the recorded `creating` (runc's).
pub fn run_runtime_hooks(hooks: &Hooks, store: &StateStore, id: &str) -> Result<(), String> {
    let state = store.load(id).map_err(|e| e.to_string())?;
    let mut prestart = state.clone();
    prestart.status = ContainerStatus::Created;
    run_spec(hooks, HookKind::Prestart, &prestart)?;
    run_spec(hooks, HookKind::CreateRuntime, &state)
}

/// `createContainer`, once the container exists in its VM.
pub fn run_container_hooks(hooks: &Hooks, store: &StateStore, id: &str) -> Result<(), String> {
    run_kinds(hooks, store, id, &[HookKind::CreateContainer])
}

pub fn warn_all(global: &Global, hooks: &Hooks, kind: HookKind, state: &ContainerState) {
    for e in run_hooks_warn(kind, hooks.get(kind), &state_json(state)) {
        global.warn(&e.to_string());
    }
}
