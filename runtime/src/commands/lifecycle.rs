//! The [`Lifecycle`]s behind `hull create` (the sandbox process) and
//! `hull run`, with the spec's hooks at their steps (see [`super::hooks`]).

use runtime::bundle::spec::Hooks;
use runtime::host::hooks::HookKind;
use runtime::process::sync::Notifier;
use runtime::sandbox::run::Lifecycle;
use runtime::sandbox::Sandbox;
use runtime::state::{ContainerState, StateStore};

use super::hooks;
use crate::Global;

/// The sandbox process of `hull create`: once the container exists and the
/// create hooks ran, it tells its creator and waits for `hull start`.
pub struct Detached<'a> {
    pub hooks: &'a Hooks,
    pub notifier: &'a mut Notifier,
}

impl Lifecycle for Detached<'_> {
    fn prepared(&mut self, store: &StateStore, id: &str) -> Result<(), String> {
        hooks::run_runtime_hooks(self.hooks, store, id)
    }

    fn created(&mut self, sandbox: &Sandbox) -> Result<(), String> {
        hooks::run_container_hooks(self.hooks, sandbox.store(), sandbox.id())?;
        let state = sandbox
            .store()
            .load(sandbox.id())
            .map_err(|e| e.to_string())?;
        self.notifier.ready_with_pid(state.pid);
        Ok(())
    }

    fn starts(&self) -> bool {
        false
    }

    fn keeps_state(&self) -> bool {
        true
    }
}

/// `hull run` in the foreground: every hook but `poststop` at its step;
/// the state at the start is kept for `poststop` after the teardown.
pub struct Foreground<'a> {
    pub global: &'a Global,
    pub hooks: &'a Hooks,
    pub last_state: Option<ContainerState>,
}

impl Lifecycle for Foreground<'_> {
    fn prepared(&mut self, store: &StateStore, id: &str) -> Result<(), String> {
        hooks::run_runtime_hooks(self.hooks, store, id)
    }

    fn created(&mut self, sandbox: &Sandbox) -> Result<(), String> {
        hooks::run_container_hooks(self.hooks, sandbox.store(), sandbox.id())
    }

    fn starting(&mut self, sandbox: &Sandbox) -> Result<(), String> {
        let state = sandbox
            .store()
            .load(sandbox.id())
            .map_err(|e| e.to_string())?;
        hooks::run_spec(self.hooks, HookKind::StartContainer, &state)
    }

    fn started(&mut self, sandbox: &Sandbox) {
        if let Ok(state) = sandbox.store().load(sandbox.id()) {
            hooks::warn_all(self.global, self.hooks, HookKind::Poststart, &state);
            self.last_state = Some(state);
        }
    }
}
