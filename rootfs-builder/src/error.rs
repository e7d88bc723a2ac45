//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while building an initramfs.
///
/// Messages are lowercase and name the offending path or argument; the
/// underlying I/O error, when there is one, is the `source`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A command-line usage problem (unknown flag, missing value, ...).
    #[error("{0}")]
    Usage(String),

    /// A `--file` argument that is not `GUEST_PATH=HOST_PATH[:MODE]`.
    #[error("invalid --file argument '{arg}': {reason}")]
    FileSpec { arg: String, reason: String },

    /// A guest path that cannot be placed in the image.
    #[error("invalid guest path '{path}': {reason}")]
    GuestPath { path: String, reason: &'static str },

    /// Two inputs want the same guest path, or a file would need a
    /// non-directory as its parent.
    #[error("guest path '{path}' conflicts with {existing}")]
    Conflict { path: String, existing: String },

    /// An input file does not exist.
    #[error("{role} {} does not exist", path.display())]
    Missing { role: &'static str, path: PathBuf },

    /// An input path exists but is not a regular file.
    #[error("{role} {} is not a regular file", path.display())]
    NotRegularFile { role: &'static str, path: PathBuf },

    /// An input file could not be read.
    #[error("cannot read {role} {}", path.display())]
    Read {
        role: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// An input file does not fit the 32-bit size field of a newc header.
    #[error("{role} {} is too large for a newc archive ({size} bytes)", path.display())]
    TooLarge {
        role: &'static str,
        path: PathBuf,
        size: u64,
    },

    /// An archive entry the newc format cannot represent.
    #[error("invalid archive entry '{path}': {reason}")]
    InvalidEntry { path: String, reason: String },

    /// The writer given to [`crate::newc::write_archive`] failed.
    #[error("cannot write archive")]
    Write(#[source] io::Error),

    /// The output file could not be written, synced or renamed into place.
    #[error("cannot write output {}", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
