//! Resolving layouts: tags, nested indexes, Docker media types, and every broken layout.

use std::fs;

use oci_spec::image::{Arch, Descriptor, MediaType, Os, PlatformBuilder};
use serde_json::json;

use crate::testutil::*;
use crate::{ImageError, Layout};

fn layer() -> (&'static str, Vec<u8>) {
    (GZIP_LAYER, gzip(&tar(&[Entry::File("a", b"1", 0o644)])))
}

#[test]
fn resolves_tagged_and_untagged_single_image() {
    let (layout, manifest) = TestLayout::single(&[layer(), layer()]);
    let opened = Layout::open(&layout.dir).unwrap();
    assert_eq!(opened.tags(), vec!["latest".to_string()]);
    for tag in [Some("latest"), None] {
        let image = opened.resolve(tag).unwrap();
        assert_eq!(image.manifest_digest(), manifest.digest());
        assert_eq!(image.layers().len(), 2);
        assert_eq!(*image.config().os(), Os::Linux);
        let entrypoint = image
            .config()
            .config()
            .as_ref()
            .unwrap()
            .entrypoint()
            .clone();
        assert_eq!(entrypoint, Some(vec!["/bin/sh".to_string()]));
    }
}

#[test]
fn several_images_need_a_tag_and_unknown_tags_list_the_known() {
    let layout = TestLayout::new();
    let l = layout.blob(GZIP_LAYER, &gzip(&tar(&[])));
    let m = layout.manifest(&[l]);
    layout.index(&[(m.clone(), Some("v1")), (m, Some("v2"))]);
    let opened = Layout::open(&layout.dir).unwrap();
    assert!(opened.resolve(Some("v2")).is_ok());
    let err = opened.resolve(None).unwrap_err();
    assert!(matches!(err, ImageError::TagNeeded { .. }), "{err}");
    assert!(err.to_string().contains("v1, v2"), "{err}");
    let err = opened.resolve(Some("v3")).unwrap_err();
    assert!(matches!(err, ImageError::TagNotFound { .. }), "{err}");
    assert!(err.to_string().contains("\"v3\" not found") && err.to_string().contains("v1, v2"));
}

#[test]
fn nested_index_picks_linux_amd64() {
    let layout = TestLayout::new();
    let l = layout.blob(GZIP_LAYER, &gzip(&tar(&[])));
    let arm = layout.manifest_typed(std::slice::from_ref(&l), OCI_MANIFEST, OCI_CONFIG, "arm64");
    let amd = layout.manifest(&[l]);
    let with = |d: &Descriptor, arch: Arch| {
        let mut d = d.clone();
        let p = PlatformBuilder::default().os(Os::Linux).architecture(arch);
        d.set_platform(Some(p.build().unwrap()));
        d
    };
    let nested = json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [with(&arm, Arch::ARM64), with(&amd, Arch::Amd64)]});
    let nested = layout.blob(OCI_INDEX, nested.to_string().as_bytes());
    layout.index(&[(nested.clone(), Some("multi"))]);
    let image = Layout::open(&layout.dir).unwrap().resolve(None).unwrap();
    assert_eq!(image.manifest_digest(), amd.digest());

    // Only arm64 in the nested index: an error naming what is there.
    let only_arm = json!({"schemaVersion": 2, "manifests": [with(&arm, Arch::ARM64)]});
    let only_arm = layout.blob(OCI_INDEX, only_arm.to_string().as_bytes());
    layout.index(&[(only_arm, None)]);
    let err = Layout::open(&layout.dir)
        .unwrap()
        .resolve(None)
        .unwrap_err();
    assert!(err.to_string().contains("linux/arm64"), "{err}");
    // An arm64 config reached directly is refused too.
    layout.index(&[(arm, None)]);
    let err = Layout::open(&layout.dir)
        .unwrap()
        .resolve(None)
        .unwrap_err();
    assert!(matches!(err, ImageError::ConfigPlatform { .. }), "{err}");
}

#[test]
fn docker_schema2_media_types_resolve() {
    let layout = TestLayout::new();
    let l = layout.blob(
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        &gzip(&tar(&[])),
    );
    let m = layout.manifest_typed(
        &[l],
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.container.image.v1+json",
        "amd64",
    );
    layout.index(&[(m, Some("latest"))]);
    let image = Layout::open(&layout.dir)
        .unwrap()
        .resolve(Some("latest"))
        .unwrap();
    assert_eq!(image.layers().len(), 1);
}

#[test]
fn missing_dir_and_missing_marker_are_named() {
    let layout = TestLayout::new();
    let missing = layout.dir.join("nope");
    let err = Layout::open(&missing).unwrap_err();
    assert!(matches!(err, ImageError::LayoutDir { .. }), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");

    fs::remove_file(layout.dir.join("oci-layout")).unwrap();
    let err = Layout::open(&layout.dir).unwrap_err();
    let want = format!(
        "{} is not an OCI image layout: no oci-layout file",
        layout.dir.display()
    );
    assert_eq!(err.to_string(), want);
}

#[test]
fn corrupt_index_and_wrong_version_are_refused() {
    let (layout, _) = TestLayout::single(&[layer()]);
    fs::write(
        layout.dir.join("index.json"),
        "{\"schemaVersion\": 2, \"manif",
    )
    .unwrap();
    let err = Layout::open(&layout.dir).unwrap_err();
    assert!(matches!(err, ImageError::Json { .. }), "{err}");
    assert!(err.to_string().contains("index.json"), "{err}");

    fs::write(
        layout.dir.join("oci-layout"),
        r#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .unwrap();
    let err = Layout::open(&layout.dir).unwrap_err();
    assert!(matches!(err, ImageError::LayoutVersion { .. }), "{err}");
}

#[test]
fn manifest_digest_and_size_are_checked() {
    let (layout, manifest) = TestLayout::single(&[layer()]);
    let path = layout.blob_path(manifest.digest().as_ref());
    let mut bytes = fs::read(&path).unwrap();
    // Same length, one byte changed: a digest mismatch.
    let last = bytes.len() - 1;
    bytes[last] = b' ';
    fs::write(&path, &bytes).unwrap();
    let err = Layout::open(&layout.dir)
        .unwrap()
        .resolve(None)
        .unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains(manifest.digest().as_ref()),
        "{err}"
    );

    // Longer than its descriptor: a size mismatch, read no further than size + 1.
    bytes.extend_from_slice(b"   ");
    fs::write(&path, &bytes).unwrap();
    let err = Layout::open(&layout.dir)
        .unwrap()
        .resolve(None)
        .unwrap_err();
    assert!(matches!(err, ImageError::SizeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("more than"), "{err}");
}

#[test]
fn unknown_media_types_and_digest_algorithms_are_refused() {
    let layout = TestLayout::new();
    let l = layout.blob("application/x-tar+bzip2", b"whatever");
    let m = layout.manifest(&[l]);
    layout.index(&[(m, None)]);
    let err = Layout::open(&layout.dir)
        .unwrap()
        .resolve(None)
        .unwrap_err();
    assert!(
        matches!(err, ImageError::UnknownMediaType { what: "layer", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("application/x-tar+bzip2"), "{err}");

    let sha512 = format!("sha512:{}", "ab".repeat(64));
    let d = Descriptor::new(
        MediaType::ImageManifest,
        10,
        sha512.parse::<oci_spec::image::Digest>().unwrap(),
    );
    layout.index(&[(d, None)]);
    let err = Layout::open(&layout.dir)
        .unwrap()
        .resolve(None)
        .unwrap_err();
    assert!(matches!(err, ImageError::DigestAlgorithm { .. }), "{err}");
}

#[test]
fn oversized_json_blob_is_refused_before_reading() {
    let layout = TestLayout::new();
    let m = layout.blob(OCI_MANIFEST, b"{}");
    let mut huge = m.clone();
    huge.set_size(crate::JSON_LIMIT_BYTES + 1);
    layout.index(&[(huge, None)]);
    let err = Layout::open(&layout.dir)
        .unwrap()
        .resolve(None)
        .unwrap_err();
    assert!(matches!(err, ImageError::BlobTooLarge { .. }), "{err}");
}
