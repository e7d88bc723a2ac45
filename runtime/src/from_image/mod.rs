//! `hull run --image DIR[:TAG]` and `hull run --rootfs DIR`: a container
//! straight from an OCI image layout or a directory, no engine and no
//! bundle. The image's layers are unpacked once into a content-addressed
//! cache (`hull-image`) and stacked with overlayfs under a run directory
//! that holds the run's own upper layer and the generated `config.json`
//! ([`generate`], from the image's config and the `podman run`-style
//! [`options`]); the container then runs like any bundle's.

use std::io;
use std::path::PathBuf;

pub mod generate;
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
}

#[cfg(test)]
mod options_tests;
