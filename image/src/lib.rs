//! OCI image layouts for `hull run --image DIR[:TAG]`: resolve a tag to a linux/amd64 image
//! (manifest and config read and digest-checked), and unpack its layers, streaming and
//! verified, into a content-addressed cache of directories ready to stack as overlayfs
//! `lowerdir`s (OCI whiteouts become overlayfs whiteouts).
//!
//! ```no_run
//! # fn main() -> Result<(), hull_image::ImageError> {
//! use hull_image::{LayerCache, Layout};
//! let layout = Layout::open("/tmp/alpine-oci")?;
//! let image = layout.resolve(Some("latest"))?;
//! let cache = LayerCache::new("/var/lib/hull/layers".into());
//! let layers = cache.unpack(&layout, &image)?; // lowest first
//! let lowerdir = hull_image::lowerdir_option(&layers); // topmost first
//! # let _ = lowerdir;
//! # Ok(())
//! # }
//! ```

mod blob;
mod cache;
mod error;
mod layout;
mod media;
mod unpack;

#[cfg(test)]
mod cache_tests;
#[cfg(test)]
mod layout_tests;
#[cfg(test)]
mod testutil;

pub use blob::JSON_LIMIT_BYTES;
pub use cache::LayerCache;
pub use error::ImageError;
pub use layout::{Image, Layout, LAYOUT_VERSION, REF_NAME_ANNOTATION};
pub use media::{layer_compression, Compression};

use std::path::PathBuf;

/// The overlayfs `lowerdir=` value for layer dirs given lowest first (as
/// [`LayerCache::unpack`] returns them): overlayfs wants the topmost first, `:`-separated.
pub fn lowerdir_option(layers: &[PathBuf]) -> String {
    layers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
use device_filter::available_or_skip;
