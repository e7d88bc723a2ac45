//! Digest-checked blob reading: `blobs/sha256/<hex>`, never more than the descriptor's size
//! plus one byte (to notice a longer blob), hashed as it streams.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, Digest, DigestAlgorithm};
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};

use crate::ImageError;

/// Largest manifest, index, config or layout file read into memory.
pub const JSON_LIMIT_BYTES: u64 = 4 << 20;

/// The hex part of a sha256 digest, checked to be exactly 64 lowercase hex digits, so it is
/// safe as a path component.
pub(crate) fn sha256_hex(digest: &Digest) -> Result<&str, ImageError> {
    if *digest.algorithm() != DigestAlgorithm::Sha256 {
        return Err(ImageError::DigestAlgorithm {
            digest: digest.to_string(),
            algorithm: digest.algorithm().to_string(),
        });
    }
    let hex = digest.digest();
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(ImageError::BadDigest {
            digest: digest.to_string(),
        });
    }
    Ok(hex)
}

/// `dir/blobs/sha256/<hex>` for a validated digest.
pub(crate) fn blob_path(dir: &Path, digest: &Digest) -> Result<PathBuf, ImageError> {
    Ok(dir.join("blobs").join("sha256").join(sha256_hex(digest)?))
}

/// A blob being read: at most `size + 1` bytes, each one hashed. [`BlobReader::finish`] says
/// whether what was read is the blob the descriptor names.
pub(crate) struct BlobReader {
    file: io::Take<File>,
    hasher: Sha256,
    read_bytes: u64,
    expected_size: u64,
    expected_digest: String,
    path: PathBuf,
}

impl BlobReader {
    pub(crate) fn open(dir: &Path, desc: &Descriptor) -> Result<Self, ImageError> {
        let path = blob_path(dir, desc.digest())?;
        let file = File::open(&path).map_err(|source| ImageError::Read {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            file: file.take(desc.size().saturating_add(1)),
            hasher: Sha256::new(),
            read_bytes: 0,
            expected_size: desc.size(),
            expected_digest: desc.digest().to_string(),
            path,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what is left (still bounded) and checks size, then digest.
    pub(crate) fn finish(mut self) -> Result<(), ImageError> {
        io::copy(&mut self, &mut io::sink()).map_err(|source| ImageError::Read {
            path: self.path.clone(),
            source,
        })?;
        if self.read_bytes != self.expected_size {
            let actual = if self.read_bytes > self.expected_size {
                format!("more than {} bytes", self.expected_size)
            } else {
                format!("{} bytes", self.read_bytes)
            };
            return Err(ImageError::SizeMismatch {
                path: self.path,
                expected: self.expected_size,
                actual,
            });
        }
        let actual = hex(&self.hasher.finalize());
        if format!("sha256:{actual}") != self.expected_digest {
            return Err(ImageError::DigestMismatch {
                path: self.path,
                expected: self.expected_digest,
                actual,
            });
        }
        Ok(())
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read_bytes += n as u64;
        Ok(n)
    }
}

/// Lowercase hex of a byte string.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a JSON blob (manifest, index, config), checked against its descriptor, and parses it.
pub(crate) fn read_json_blob<T: DeserializeOwned>(
    dir: &Path,
    desc: &Descriptor,
) -> Result<T, ImageError> {
    if desc.size() > JSON_LIMIT_BYTES {
        return Err(ImageError::BlobTooLarge {
            digest: desc.digest().to_string(),
            size: desc.size(),
            limit_bytes: JSON_LIMIT_BYTES,
        });
    }
    let mut reader = BlobReader::open(dir, desc)?;
    // The size is capped above, so this allocation is too.
    let mut bytes = Vec::with_capacity(usize::try_from(desc.size()).unwrap_or(0));
    reader
        .read_to_end(&mut bytes)
        .map_err(|source| ImageError::Read {
            path: reader.path().to_path_buf(),
            source,
        })?;
    let path = reader.path().to_path_buf();
    reader.finish()?;
    serde_json::from_slice(&bytes).map_err(|source| ImageError::Json { path, source })
}

/// Reads a small file of the layout itself (`oci-layout`, `index.json`), capped in size.
pub(crate) fn read_json_file<T: DeserializeOwned>(path: &Path) -> Result<T, ImageError> {
    let file = File::open(path).map_err(|source| ImageError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut bytes = Vec::new();
    file.take(JSON_LIMIT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ImageError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > JSON_LIMIT_BYTES {
        return Err(ImageError::TooLarge {
            path: path.to_path_buf(),
            limit_bytes: JSON_LIMIT_BYTES,
        });
    }
    serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
        path: path.to_path_buf(),
        source,
    })
}
