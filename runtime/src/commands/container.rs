//! Looking up a container for a command: the library's
//! [`runtime::container::Container`], with its agent deadline and
//! poststart grace from the configuration and the container's annotations.

use crate::Global;
use runtime::container::Container;

/// The container `id`, as the command line's `--root` and config see it.
pub fn load(global: &Global, id: &str) -> anyhow::Result<Container> {
    let mut c = Container::load(&global.root, id)?;
    if let Ok(config) = global.config() {
        // The container's own `io.hull.*` annotations (checked at create).
        let spec = c.spec().ok();
        let annotations = spec
            .as_ref()
            .and_then(|s| s.annotations().as_ref())
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        let config = config
            .with_annotations(annotations)
            .unwrap_or_else(|_| config.clone());
        c.agent_deadline = config.agent_deadline();
        c.poststart_grace = config.poststart_grace();
    }
    Ok(c)
}
