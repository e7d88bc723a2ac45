//! An OCI image layout directory: `oci-layout`, `index.json`, `blobs/sha256/<hex>`.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Arch, Descriptor, Digest, ImageConfiguration, ImageIndex, ImageManifest, OciLayout, Os,
};

use crate::blob::{read_json_blob, read_json_file, sha256_hex};
use crate::media::{is_config, layer_compression, manifest_kind, ManifestKind};
use crate::ImageError;

/// The annotation naming a manifest in `index.json` (the TAG of `oci:DIR:TAG`).
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// The one image layout version there is.
pub const LAYOUT_VERSION: &str = "1.0.0";
/// Image indexes pointing at image indexes: how deep we follow.
const INDEX_DEPTH_LIMIT: usize = 4;

/// An opened image layout: its version checked and its `index.json` parsed.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
    index: ImageIndex,
}

/// A resolved image: its manifest and config read and checked, its layers' media types and
/// digests validated.
#[derive(Debug, Clone)]
pub struct Image {
    manifest_digest: Digest,
    manifest: ImageManifest,
    config: ImageConfiguration,
}

impl Image {
    /// The image configuration (entrypoint, env, working dir, user...).
    pub fn config(&self) -> &ImageConfiguration {
        &self.config
    }

    /// The layer descriptors, lowest (base) first.
    pub fn layers(&self) -> &[Descriptor] {
        self.manifest.layers()
    }

    /// The digest of the image manifest (the image's identity).
    pub fn manifest_digest(&self) -> &Digest {
        &self.manifest_digest
    }
}

impl Layout {
    /// Opens `dir`, checking `oci-layout` (version 1.0.0) and parsing `index.json`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Layout, ImageError> {
        let dir = dir.as_ref().to_path_buf();
        let meta = fs::metadata(&dir).map_err(|source| ImageError::LayoutDir {
            dir: dir.clone(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(ImageError::LayoutDir {
                dir,
                source: std::io::Error::from(std::io::ErrorKind::NotADirectory),
            });
        }
        let marker = dir.join("oci-layout");
        if fs::symlink_metadata(&marker).is_err() {
            return Err(ImageError::NotALayout { dir });
        }
        let layout: OciLayout = read_json_file(&marker)?;
        if layout.image_layout_version() != LAYOUT_VERSION {
            return Err(ImageError::LayoutVersion {
                dir,
                version: layout.image_layout_version().clone(),
            });
        }
        let index = read_json_file(&dir.join("index.json"))?;
        Ok(Layout { dir, index })
    }

    /// The layout's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The tags (`org.opencontainers.image.ref.name`) of `index.json`'s manifests.
    pub fn tags(&self) -> Vec<String> {
        self.index.manifests().iter().filter_map(ref_name).collect()
    }

    /// Picks the manifest tagged `tag` (or the only one when `tag` is `None`), follows image
    /// indexes to the linux/amd64 manifest, and reads and checks manifest and config.
    pub fn resolve(&self, tag: Option<&str>) -> Result<Image, ImageError> {
        let manifests = self.index.manifests();
        let chosen = match tag {
            Some(tag) => manifests
                .iter()
                .find(|d| ref_name(d).as_deref() == Some(tag))
                .ok_or_else(|| ImageError::TagNotFound {
                    dir: self.dir.clone(),
                    tag: tag.to_string(),
                    tags: self.tag_list(),
                })?,
            None => match manifests.as_slice() {
                [] => {
                    return Err(ImageError::NoManifest {
                        dir: self.dir.clone(),
                    })
                }
                [only] => only,
                _ => {
                    return Err(ImageError::TagNeeded {
                        dir: self.dir.clone(),
                        tags: self.tag_list(),
                    })
                }
            },
        };
        let manifest_desc = self.follow_indexes(chosen.clone())?;
        let manifest: ImageManifest = read_json_blob(&self.dir, &manifest_desc)?;
        let config_desc = manifest.config();
        if !is_config(config_desc.media_type()) {
            return Err(unknown(config_desc, "config"));
        }
        let config: ImageConfiguration = read_json_blob(&self.dir, config_desc)?;
        if *config.os() != Os::Linux || *config.architecture() != Arch::Amd64 {
            return Err(ImageError::ConfigPlatform {
                digest: config_desc.digest().to_string(),
                os: config.os().to_string(),
                arch: config.architecture().to_string(),
            });
        }
        for layer in manifest.layers() {
            sha256_hex(layer.digest())?;
            if layer_compression(layer.media_type()).is_none() {
                return Err(unknown(layer, "layer"));
            }
        }
        Ok(Image {
            manifest_digest: manifest_desc.digest().clone(),
            manifest,
            config,
        })
    }

    /// From an index entry down to an image manifest descriptor, through nested indexes.
    fn follow_indexes(&self, mut desc: Descriptor) -> Result<Descriptor, ImageError> {
        for _ in 0..INDEX_DEPTH_LIMIT {
            match manifest_kind(desc.media_type()) {
                Some(ManifestKind::Manifest) => return Ok(desc),
                Some(ManifestKind::Index) => {
                    let index: ImageIndex = read_json_blob(&self.dir, &desc)?;
                    desc = pick_linux_amd64(&index, &desc)?;
                }
                None => return Err(unknown(&desc, "manifest")),
            }
        }
        Err(ImageError::IndexTooDeep {
            digest: desc.digest().to_string(),
            limit: INDEX_DEPTH_LIMIT,
        })
    }

    fn tag_list(&self) -> String {
        let tags = self.tags();
        if tags.is_empty() {
            "(none)".to_string()
        } else {
            tags.join(", ")
        }
    }
}

fn ref_name(desc: &Descriptor) -> Option<String> {
    desc.annotations()
        .as_ref()?
        .get(REF_NAME_ANNOTATION)
        .cloned()
}

fn unknown(desc: &Descriptor, what: &'static str) -> ImageError {
    ImageError::UnknownMediaType {
        media_type: desc.media_type().to_string(),
        what,
        digest: desc.digest().to_string(),
    }
}

/// The linux/amd64 entry of a nested index.
fn pick_linux_amd64(index: &ImageIndex, at: &Descriptor) -> Result<Descriptor, ImageError> {
    let is_ours = |d: &&Descriptor| {
        d.platform()
            .as_ref()
            .is_some_and(|p| *p.os() == Os::Linux && *p.architecture() == Arch::Amd64)
    };
    if let Some(found) = index.manifests().iter().find(is_ours) {
        return Ok(found.clone());
    }
    let platforms: Vec<String> = index
        .manifests()
        .iter()
        .map(|d| match d.platform() {
            Some(p) => format!("{}/{}", p.os(), p.architecture()),
            None => "unknown".to_string(),
        })
        .collect();
    Err(ImageError::NoPlatform {
        digest: at.digest().to_string(),
        platforms: if platforms.is_empty() {
            "none".to_string()
        } else {
            platforms.join(", ")
        },
    })
}
