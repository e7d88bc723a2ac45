//! Runs the `hull-rootfs-builder` binary: exit codes, messages, output.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_hull-rootfs-builder");

/// A fresh directory under cargo's per-target test tmpdir.
fn scratch(tag: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("rootfs-builder-cli-{tag}"));
    let _ = fs::remove_dir_all(&dir);
    if let Err(e) = fs::create_dir_all(&dir) {
        panic!("cannot create {}: {e}", dir.display());
    }
    dir
}

fn write(path: &Path, contents: &[u8]) {
    if let Err(e) = fs::write(path, contents) {
        panic!("cannot write {}: {e}", path.display());
    }
}

fn run(args: &[&str]) -> Output {
    match Command::new(BIN).args(args).output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run {BIN}: {e}"),
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn builds_an_image_and_is_deterministic() {
    let dir = scratch("ok");
    let agent = dir.join("agent");
    let extra = dir.join("motd");
    write(&agent, b"agent bytes");
    write(&extra, b"hello\n");
    let out_path = dir.join("initramfs.cpio");
    let (agent_s, out_s) = (agent.display().to_string(), out_path.display().to_string());
    let file_arg = format!("/etc/motd={}:0444", extra.display());

    let args = ["--agent", &agent_s, "--output", &out_s, "--file", &file_arg];
    let first = run(&args);
    assert!(first.status.success(), "{}", stderr(&first));
    let a = fs::read(&out_path).ok();
    let second = run(&args);
    assert!(second.status.success(), "{}", stderr(&second));
    let b = fs::read(&out_path).ok();
    assert!(a.is_some() && a == b, "two runs gave different bytes");
    let bytes = a.unwrap_or_default();
    assert!(bytes.starts_with(b"070701"));
    assert!(bytes.windows(9).any(|w| w == b"etc/motd\0"));

    // Only the inputs and the output remain: no temporary file left behind.
    let mut names: Vec<String> = fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    assert_eq!(names, ["agent", "initramfs.cpio", "motd"]);
}

#[test]
fn bad_file_syntax_fails() {
    let dir = scratch("bad-file");
    let agent = dir.join("agent");
    write(&agent, b"agent");
    let out_path = dir.join("out.cpio");
    let out = run(&[
        "--agent",
        &agent.display().to_string(),
        "--output",
        &out_path.display().to_string(),
        "--file",
        "etc/motd",
    ]);
    assert!(!out.status.success());
    let msg = stderr(&out);
    assert!(
        msg.contains("invalid --file argument 'etc/motd'"),
        "unexpected stderr: {msg}"
    );
    assert!(!out_path.exists(), "no output on failure");
}

#[test]
fn missing_agent_fails_with_its_path() {
    let dir = scratch("missing-agent");
    let agent = dir.join("no-such-agent");
    let out_path = dir.join("out.cpio");
    let out = run(&[
        "--agent",
        &agent.display().to_string(),
        "--output",
        &out_path.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let msg = stderr(&out);
    assert!(
        msg.contains(&format!("agent binary {} does not exist", agent.display())),
        "unexpected stderr: {msg}"
    );
    assert!(!out_path.exists());
}

#[test]
fn directory_as_input_fails() {
    let dir = scratch("dir-input");
    let agent = dir.join("agent");
    write(&agent, b"agent");
    let file_arg = format!("etc/x={}", dir.display());
    let out = run(&[
        "--agent",
        &agent.display().to_string(),
        "--output",
        &dir.join("out.cpio").display().to_string(),
        "--file",
        &file_arg,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let msg = stderr(&out);
    assert!(
        msg.contains(&format!("file {} is not a regular file", dir.display())),
        "unexpected stderr: {msg}"
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let out = run(&["--agent", "a"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing required --output PATH"));

    let help = run(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).starts_with("usage: hull-rootfs-builder"));
}

#[test]
fn unknown_flags_and_repeats_are_usage_errors() {
    for (args, want) in [
        (
            &["--bogus"][..],
            "error: unexpected argument '--bogus' found",
        ),
        (
            &["--agent", "a", "--agent=b", "--output", "o"][..],
            "error: the argument '--agent <PATH>' cannot be used multiple times",
        ),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let msg = stderr(&out);
        assert!(
            msg.starts_with(&format!("hull-rootfs-builder: {want}\n")),
            "{msg}"
        );
        assert!(msg.contains("try 'hull-rootfs-builder --help'"), "{msg}");
    }
}
