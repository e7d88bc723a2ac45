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
