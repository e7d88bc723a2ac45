//! Test helpers: small OCI layouts and layer tars built from code.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, Digest, MediaType};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::blob::hex;

pub(crate) const GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub(crate) const ZSTD_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub(crate) const TAR_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// One tar entry to build.
pub(crate) enum Entry<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str, u32),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    /// A regular file whose name is written raw (no `..`/absolute checks by `tar`).
    RawName(&'a str),
}

/// Owner given to every built entry (applied only when unpacking as root).
pub(crate) const TEST_UID: u64 = 1234;
pub(crate) const TEST_GID: u64 = 5678;
pub(crate) const TEST_MTIME: u64 = 1_600_000_000;

pub(crate) fn tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(TEST_UID);
        h.set_gid(TEST_GID);
        h.set_mtime(TEST_MTIME);
        let (path, data): (&str, &[u8]) = match entry {
            Entry::File(path, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                (path, data)
            }
            Entry::Dir(path, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                (path, &[])
            }
            Entry::Symlink(path, target) | Entry::Hardlink(path, target) => {
                let kind = match entry {
                    Entry::Symlink(..) => tar::EntryType::Symlink,
                    _ => tar::EntryType::Link,
                };
                h.set_entry_type(kind);
                h.set_mode(0o777);
                h.set_link_name(target).unwrap();
                (path, &[])
            }
            Entry::RawName(name) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                let raw = &mut h.as_gnu_mut().unwrap().name;
                raw[..name.len()].copy_from_slice(name.as_bytes());
                h.set_size(3);
                h.set_cksum();
                builder.append(&h, &b"bad"[..]).unwrap();
                continue;
            }
        };
        h.set_size(data.len() as u64);
        builder.append_data(&mut h, path, data).unwrap();
    }
    builder.into_inner().unwrap()
}

pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

pub(crate) fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

pub(crate) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// An image layout in a temporary directory.
pub(crate) struct TestLayout {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
}

impl TestLayout {
    pub(crate) fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("layout");
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Self { _tmp: tmp, dir }
    }

    /// A sibling directory for the layer cache, removed with the layout.
    pub(crate) fn cache_root(&self) -> PathBuf {
        self.dir.with_file_name("cache")
    }

    pub(crate) fn blob(&self, media_type: &str, bytes: &[u8]) -> Descriptor {
        let digest = sha256(bytes);
        fs::write(self.blob_path(&digest), bytes).unwrap();
        let digest: Digest = digest.parse().unwrap();
        Descriptor::new(MediaType::from(media_type), bytes.len() as u64, digest)
    }

    pub(crate) fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir.join("blobs/sha256").join(hex)
    }

    /// Config (linux/amd64) and manifest blobs for these layers; the manifest's descriptor.
    pub(crate) fn manifest(&self, layers: &[Descriptor]) -> Descriptor {
        self.manifest_typed(layers, OCI_MANIFEST, OCI_CONFIG, "amd64")
    }

    pub(crate) fn manifest_typed(
        &self,
        layers: &[Descriptor],
        manifest_type: &str,
        config_type: &str,
        arch: &str,
    ) -> Descriptor {
        let config = json!({
            "architecture": arch, "os": "linux",
            "config": {"Entrypoint": ["/bin/sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": []},
        });
        let config = self.blob(config_type, &serde_json::to_vec(&config).unwrap());
        let manifest = json!({
            "schemaVersion": 2, "mediaType": manifest_type,
            "config": config, "layers": layers,
        });
        self.blob(manifest_type, &serde_json::to_vec(&manifest).unwrap())
    }

    /// Writes `index.json` listing `manifests`, each with its tag annotation when given.
    pub(crate) fn index(&self, manifests: &[(Descriptor, Option<&str>)]) {
        let list: Vec<Descriptor> = manifests
            .iter()
            .map(|(d, tag)| {
                let mut d = d.clone();
                if let Some(tag) = tag {
                    let a = [(crate::REF_NAME_ANNOTATION.to_string(), tag.to_string())];
                    d.set_annotations(Some(a.into_iter().collect()));
                }
                d
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list});
        fs::write(self.dir.join("index.json"), index.to_string()).unwrap();
    }

    /// A one-image layout tagged `latest` with these layers.
    pub(crate) fn single(layers: &[(&str, Vec<u8>)]) -> (Self, Descriptor) {
        let layout = Self::new();
        let descs: Vec<Descriptor> = layers.iter().map(|(t, b)| layout.blob(t, b)).collect();
        let manifest = layout.manifest(&descs);
        layout.index(&[(manifest.clone(), Some("latest"))]);
        (layout, manifest)
    }
}

pub(crate) fn is_empty_dir(path: &Path) -> bool {
    fs::read_dir(path)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}
