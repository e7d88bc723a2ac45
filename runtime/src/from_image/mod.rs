//! `hull run --image DIR[:TAG]` and `hull run --rootfs DIR`: a container
//! straight from an OCI image layout or a directory, no engine and no
//! bundle. The image's layers are unpacked once into a content-addressed
//! cache (`hull-image`) and stacked with overlayfs under a run directory
//! that holds the run's own upper layer and the generated `config.json`
//! ([`generate`], from the image's config and the `podman run`-style
//! [`options`]); the container then runs like any bundle's.

use std::io;
use std::path::{Path, PathBuf};

pub mod cleanup;
pub mod generate;
pub mod network;
pub mod options;
pub mod rootfs;
pub mod users;

#[derive(Debug, thiserror::Error)]
pub enum FromImageError {
    #[error("{0}")]
    BadOption(String),
    #[error("{path}: {source}")]
    Rootfs { path: PathBuf, source: io::Error },
    #[error("cannot mount the image's layers on {path}: {source}")]
    Overlay { path: PathBuf, source: io::Error },
    #[error("the image has {count} layers; overlayfs takes at most {max} here")]
    TooManyLayers { count: usize, max: usize },
    #[error(transparent)]
    Image(#[from] hull_image::ImageError),
    #[error(transparent)]
    Network(#[from] crate::host::cni::CniError),
}

/// On a run's spec (not an `io.hull.*` setting): its run directory, which `hull delete` removes (only
/// when it is [`run_dir`] of the container's id under the store).
pub const RUN_DIR_ANNOTATION: &str = "hull.io/run-dir";

/// The run directory of container `id` under the image store.
pub fn run_dir(store: &Path, id: &str) -> PathBuf {
    store.join("runs").join(id)
}

/// The run directory a container's spec names, if it is really the one of
/// `id` under `store` (a spec cannot make `delete` remove anything else).
pub fn owned_run_dir(store: &Path, id: &str, annotated: Option<&str>) -> Option<PathBuf> {
    let want = run_dir(store, id);
    (annotated.map(Path::new) == Some(want.as_path())).then_some(want)
}

/// Removes run `id`'s directory: its network (CNI `DEL`, the namespace),
/// its overlay root, its files. Everything is tried; the first error is
/// returned.
pub fn remove_run(id: &str, run_dir: &Path) -> Result<(), FromImageError> {
    let network = network::detach(id, run_dir);
    let root = rootfs::remove(run_dir);
    network.and(root)
}

/// Makes /dev/null this process's stdin (a run without `-i`).
pub fn stdin_from_dev_null() -> io::Result<()> {
    let null = std::fs::File::open("/dev/null")?;
    Ok(nix::unistd::dup2_stdin(null)?)
}

#[cfg(test)]
mod options_tests;

/// The image at `layout` (`tag`, or its only one) unpacked into the
/// store's layer cache (`<store>/layers`): the layer directories, lowest
/// first, and the image's config.
pub fn unpack(
    store: &Path,
    layout: &Path,
    tag: Option<&str>,
) -> Result<(Vec<PathBuf>, Option<oci_spec::image::Config>), FromImageError> {
    let layout = hull_image::Layout::open(layout)?;
    let image = layout.resolve(tag)?;
    let layers = hull_image::LayerCache::new(store.join("layers")).unpack(&layout, &image)?;
    Ok((layers, image.config().config().clone()))
}
