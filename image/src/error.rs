//! The one error type of the crate: every message names the file, blob or tag at fault.

use std::io;
use std::path::PathBuf;

/// Why an image layout could not be resolved or a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot open image layout {dir}: {source}")]
    LayoutDir { dir: PathBuf, source: io::Error },
    #[error("{dir} is not an OCI image layout: no oci-layout file")]
    NotALayout { dir: PathBuf },
    #[error("{dir}: unsupported image layout version {version:?} (want 1.0.0)")]
    LayoutVersion { dir: PathBuf, version: String },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is larger than the {limit_bytes}-byte limit")]
    TooLarge { path: PathBuf, limit_bytes: u64 },
    #[error("corrupt JSON in {path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("blob {digest} is {size} bytes, over the {limit_bytes}-byte limit for JSON blobs")]
    BlobTooLarge {
        digest: String,
        size: u64,
        limit_bytes: u64,
    },
    #[error("digest mismatch in blob {path}: expected {expected}, actual sha256:{actual}")]
    DigestMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("size mismatch in blob {path}: descriptor says {expected} bytes, blob has {actual}")]
    SizeMismatch {
        path: PathBuf,
        expected: u64,
        /// "N bytes" or "more than N bytes" (reading stops one byte past the descriptor).
        actual: String,
    },
    #[error("unsupported digest algorithm {algorithm} in {digest} (only sha256 is supported)")]
    DigestAlgorithm { digest: String, algorithm: String },
    #[error("invalid digest {digest}: not 64 lowercase hex digits")]
    BadDigest { digest: String },
    #[error("unknown media type {media_type:?} for {what} {digest}")]
    UnknownMediaType {
        media_type: String,
        what: &'static str,
        digest: String,
    },
    #[error("{dir}: index.json lists no manifests")]
    NoManifest { dir: PathBuf },
    #[error("tag {tag:?} not found in {dir}; tags: {tags}")]
    TagNotFound {
        dir: PathBuf,
        tag: String,
        tags: String,
    },
    #[error("{dir} holds several images: name one of the tags: {tags}")]
    TagNeeded { dir: PathBuf, tags: String },
    #[error("image index {digest} has no linux/amd64 manifest (it has: {platforms})")]
    NoPlatform { digest: String, platforms: String },
    #[error("image indexes nested deeper than {limit} levels at {digest}")]
    IndexTooDeep { digest: String, limit: usize },
    #[error("image config {digest} is for {os}/{arch}; hull runs linux/amd64")]
    ConfigPlatform {
        digest: String,
        os: String,
        arch: String,
    },
    #[error("unsafe path {path:?} in layer {digest}: {why}")]
    UnsafePath {
        digest: String,
        path: String,
        why: &'static str,
    },
    #[error("cannot unpack {path:?} from layer {digest}: {source}")]
    Unpack {
        digest: String,
        path: String,
        source: io::Error,
    },
    #[error("layer cache {path}: {source}")]
    Cache { path: PathBuf, source: io::Error },
}
