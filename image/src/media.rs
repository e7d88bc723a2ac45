//! Media types hull accepts: the OCI ones and their Docker v2 schema2 equivalents (which
//! `podman save --format oci-dir` may write).

use oci_spec::image::MediaType;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const DOCKER_FOREIGN_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// What an index entry points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ManifestKind {
    Manifest,
    Index,
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

pub(crate) fn manifest_kind(media_type: &MediaType) -> Option<ManifestKind> {
    match media_type {
        MediaType::ImageManifest => Some(ManifestKind::Manifest),
        MediaType::ImageIndex => Some(ManifestKind::Index),
        MediaType::Other(s) if s == DOCKER_MANIFEST => Some(ManifestKind::Manifest),
        MediaType::Other(s) if s == DOCKER_MANIFEST_LIST => Some(ManifestKind::Index),
        _ => None,
    }
}

pub(crate) fn is_config(media_type: &MediaType) -> bool {
    match media_type {
        MediaType::ImageConfig => true,
        MediaType::Other(s) => s == DOCKER_CONFIG,
        _ => false,
    }
}

/// The compression of a layer of this media type, `None` when it is no layer type we know.
pub fn layer_compression(media_type: &MediaType) -> Option<Compression> {
    match media_type {
        MediaType::ImageLayer | MediaType::ImageLayerNonDistributable => Some(Compression::None),
        MediaType::ImageLayerGzip | MediaType::ImageLayerNonDistributableGzip => {
            Some(Compression::Gzip)
        }
        MediaType::ImageLayerZstd | MediaType::ImageLayerNonDistributableZstd => {
            Some(Compression::Zstd)
        }
        MediaType::Other(s) if s == DOCKER_LAYER_GZIP || s == DOCKER_FOREIGN_LAYER_GZIP => {
            Some(Compression::Gzip)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_types_map_to_oci_roles() {
        let m = |s: &str| MediaType::from(s);
        assert_eq!(
            manifest_kind(&m(DOCKER_MANIFEST)),
            Some(ManifestKind::Manifest)
        );
        assert_eq!(
            manifest_kind(&m(DOCKER_MANIFEST_LIST)),
            Some(ManifestKind::Index)
        );
        assert!(is_config(&m(DOCKER_CONFIG)));
        assert_eq!(
            layer_compression(&m(DOCKER_LAYER_GZIP)),
            Some(Compression::Gzip)
        );
        assert_eq!(
            layer_compression(&m("application/vnd.oci.image.layer.v1.tar+zstd")),
            Some(Compression::Zstd)
        );
        assert_eq!(layer_compression(&m("application/x-tar+bzip2")), None);
        assert!(!is_config(&m("application/vnd.oci.image.manifest.v1+json")));
    }
}
