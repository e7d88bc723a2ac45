//! The [`Lifecycle`]s behind `hull create` (the sandbox process) and
//! `hull run`, with the spec's hooks at their steps.

use runtime::process::sync::Notifier;
use runtime::sandbox::run::Lifecycle;
use runtime::sandbox::Sandbox;

/// The sandbox process of `hull create`: once the container exists (and
/// the create hooks ran) it tells its creator and waits for `hull start`.
pub struct Detached<'a> {
    pub notifier: &'a mut Notifier,
}

impl Lifecycle for Detached<'_> {
    fn created(&mut self, _sandbox: &Sandbox) -> Result<(), String> {
        self.notifier.ready();
        Ok(())
    }

    fn starts(&self) -> bool {
        false
    }

    fn keeps_state(&self) -> bool {
        true
    }
}
