//! `hull run --rootfs`/`--image`: the generated spec and run directory, the
//! options, and bad input, with the fake VMM.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{finish, text, Case};

/// `hull --root R run ARGS…` with the fake VMM and the store under the case.
fn image_run(case: &Case, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hull"));
    cmd.arg("--root")
        .arg(case.root())
        .arg("run")
        .args(args)
        .env("HULL_VMM", std::env::current_exe().unwrap())
        .env("HULL_KERNEL", "/dev/null")
        .env("HULL_INITRD", "/dev/null")
        .env("HULL_IMAGE_STORE", store(case))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn store(case: &Case) -> PathBuf {
    case.tmp.join("store")
}

fn rootfs(case: &Case) -> String {
    case.tmp.join("bundle/rootfs").display().to_string()
}

fn runs_left(case: &Case) -> Vec<PathBuf> {
    std::fs::read_dir(store(case).join("runs"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

pub fn a_rootfs_runs_with_the_options() {
    let case = Case::sh("rootfs-run", "true");
    let root = rootfs(&case);
    let script = "cat marker; echo \"$GREETING $HOSTNAME\"; if read x; then echo \"stdin $x\"; else echo no-stdin; fi; exit 4";
    let args = [
        "--rootfs",
        &root,
        "--name",
        &case.id,
        "-e",
        "GREETING=hi",
        "--",
        "sh",
        "-c",
        script,
    ];
    let out = finish(image_run(&case, &args).spawn().unwrap(), b"hello\n");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let host: String = case.id.chars().take(12).collect();
    assert_eq!(
        text(&out.stdout),
        format!("from the rootfs\nhi {host}\nno-stdin\n")
    );
    assert!(runs_left(&case).is_empty(), "the run directory stayed");
    case.assert_clean();

    // -i keeps stdin; -w and --hostname are the process's.
    let args = [
        "--rootfs",
        &root,
        "--name",
        &case.id,
        "-i",
        "--hostname",
        "box",
        "--",
        "sh",
        "-c",
        "echo $HOSTNAME; read x; echo \"stdin $x\"",
    ];
    let out = finish(image_run(&case, &args).spawn().unwrap(), b"hello\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "box\nstdin hello\n");
    assert!(runs_left(&case).is_empty());
    case.assert_clean();

    // Detached: the id is printed, the run directory stays until delete.
    let args = [
        "--rootfs", &root, "--name", &case.id, "-d", "--", "sleep", "30",
    ];
    let out = finish(image_run(&case, &args).spawn().unwrap(), b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{}\n", case.id));
    assert_eq!(runs_left(&case).len(), 1);
    let out = Command::new(env!("CARGO_BIN_EXE_hull"))
        .arg("--root")
        .arg(case.root())
        .args(["delete", "--force", &case.id])
        .env("HULL_IMAGE_STORE", store(&case))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(runs_left(&case).is_empty(), "delete left the run directory");
    case.assert_clean();
}

pub fn bad_image_runs_are_refused_and_leave_nothing() {
    let case = Case::sh("image-run-bad", "true");
    let root = rootfs(&case);
    let refused = |args: &[&str], want: &str| {
        let out = finish(image_run(&case, args).spawn().unwrap(), b"");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(runs_left(&case).is_empty(), "{args:?} left a run directory");
        case.assert_clean();
    };
    refused(
        &["--image", "/no/such/layout", "--name", &case.id],
        "/no/such/layout",
    );
    refused(
        &["--rootfs", "/no/such/dir", "--name", &case.id, "--", "true"],
        "/no/such/dir",
    );
    refused(
        &["--rootfs", &root, "--network", "host", "--", "true"],
        "cannot share",
    );
    refused(
        &["--rootfs", &root, "-p", "8080:80", "--", "true"],
        "needs --network default",
    );
    refused(
        &["--rootfs", &root, "-v", "relative:/x", "--", "true"],
        "absolute",
    );
    refused(
        &["--rootfs", &root, "-u", "nobody", "--", "true"],
        "no user \"nobody\"",
    );
    refused(
        &["--rootfs", &root, "--name", "../x", "--", "true"],
        "invalid container name",
    );
    refused(&["--rootfs", &root], "no command");
    // A name in use: refused, and the other run's directory is left alone.
    let theirs = store(&case).join("runs").join(&case.id);
    std::fs::create_dir_all(&theirs).unwrap();
    let out = finish(
        image_run(
            &case,
            &["--rootfs", &root, "--name", &case.id, "--", "true"],
        )
        .spawn()
        .unwrap(),
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is in use"),
        "{}",
        text(&out.stderr)
    );
    assert!(theirs.exists());
    std::fs::remove_dir(&theirs).unwrap();
}

/// Writes `bytes` as a blob of the layout at `dir`; its descriptor.
fn blob(dir: &std::path::Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    use sha2::Digest;
    let hex = format!("{:x}", sha2::Sha256::digest(bytes));
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).unwrap();
    serde_json::json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len()})
}

/// A gzip layer of `files` (path, text).
fn layer(files: &[(&str, &str)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.append_data(&mut header, path, text.as_bytes()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// An OCI image layout at `dir`, tag `v1`: two layers (the second replaces
/// `hello.txt`), an Entrypoint and Cmd, Env, a named User.
fn image_layout(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let l0 = layer(&[
        ("hello.txt", "from layer 0\n"),
        (
            "etc/passwd",
            "root:x:0:0::/:/bin/sh\napp:x:7:7::/:/bin/sh\n",
        ),
    ]);
    let l1 = layer(&[("hello.txt", "from the image\n")]);
    let gz = "application/vnd.oci.image.layer.v1.tar+gzip";
    let layers = [blob(dir, gz, &l0), blob(dir, gz, &l1)];
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["sh", "-c"], "Cmd": ["cat hello.txt; echo $MODE"],
                   "Env": ["MODE=image", "PATH=/usr/bin:/bin"], "User": "app"},
        "rootfs": {"type": "layers", "diff_ids": []},
    });
    let config = blob(
        dir,
        "application/vnd.oci.image.config.v1+json",
        config.to_string().as_bytes(),
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": layers,
    });
    let mut m = blob(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.to_string().as_bytes(),
    );
    m["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "v1"});
    std::fs::write(
        dir.join("index.json"),
        serde_json::json!({"schemaVersion": 2, "manifests": [m]}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    layers
        .iter()
        .map(|l| {
            dir.join("blobs/sha256")
                .join(l["digest"].as_str().unwrap().trim_start_matches("sha256:"))
        })
        .collect()
}

pub fn an_image_runs_and_its_layers_are_reused() {
    use std::os::unix::fs::MetadataExt;
    let case = Case::sh("image-run", "true");
    let dir = case.tmp.join("layout");
    let blobs = image_layout(&dir);
    let image = format!("{}:v1", dir.display());
    let out = finish(
        image_run(&case, &["--image", &image, "--name", &case.id])
            .spawn()
            .unwrap(),
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "from the image\nimage\n",
        "the top layer, the image's Env"
    );
    assert!(runs_left(&case).is_empty());
    case.assert_clean();
    let layers: Vec<PathBuf> = std::fs::read_dir(store(&case).join("layers/sha256"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(layers.len(), 2, "{layers:?}");
    let inodes: Vec<u64> = layers
        .iter()
        .map(|l| std::fs::metadata(l).unwrap().ino())
        .collect();
    // The second run reads no layer blob: they are gone, the cache serves.
    for b in &blobs {
        std::fs::remove_file(b).unwrap();
    }
    let args = [
        "--image",
        &image,
        "--name",
        &case.id,
        "-e",
        "MODE=option",
        "--",
        "echo $MODE",
    ];
    let out = finish(image_run(&case, &args).spawn().unwrap(), b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "option\n",
        "the Entrypoint stays, -e wins"
    );
    let again: Vec<u64> = layers
        .iter()
        .map(|l| std::fs::metadata(l).unwrap().ino())
        .collect();
    assert_eq!(inodes, again);
    case.assert_clean();

    // A layer whose blob does not match its digest: refused, nothing kept.
    let _ = std::fs::remove_dir_all(store(&case).join("layers"));
    let broken = case.tmp.join("broken");
    let blobs = image_layout(&broken);
    std::fs::write(&blobs[1], b"not the layer").unwrap();
    let image = format!("{}:v1", broken.display());
    let out = finish(
        image_run(&case, &["--image", &image, "--name", &case.id])
            .spawn()
            .unwrap(),
        b"",
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("size") || stderr.contains("digest"),
        "{stderr}"
    );
    assert!(runs_left(&case).is_empty());
    let cached = std::fs::read_dir(store(&case).join("layers/sha256"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(cached <= 1, "only the good layer may be cached");
    case.assert_clean();
    let out = finish(
        image_run(&case, &["--image", &format!("{}:nope", dir.display())])
            .spawn()
            .unwrap(),
        b"",
    );
    assert!(
        text(&out.stderr).contains("v1"),
        "an unknown tag lists the tags: {}",
        text(&out.stderr)
    );
}
