//! Looking up a container for a command: the library's
//! [`runtime::container::Container`], with its agent deadline from the
//! configuration.

use crate::Global;
use runtime::container::Container;

/// The container `id`, as the command line's `--root` and config see it.
pub fn load(global: &Global, id: &str) -> anyhow::Result<Container> {
    let mut c = Container::load(&global.root, id)?;
    if let Ok(config) = global.config() {
        c.agent_deadline = config.agent_deadline();
    }
    Ok(c)
}
