//! hull as the stage1 of rkt: each entrypoint of rkt's stage1 interface
//! (version 5: run, enter, gc, stop, app add/start/stop/rm) as a function
//! of its arguments, run in the pod directory stage0 chdir'd to. A pod is
//! one hull VM: a sandbox container owns it, each app is a member
//! container in it, all driven through the `hull` CLI as an engine would.

use std::path::PathBuf;

pub mod app;
pub mod appc;
pub mod args;
pub mod bundle;
pub mod entry;
pub mod hull;
pub mod isolators;
pub mod lock;
pub mod net;
pub mod pod;
pub mod reap;
pub mod run;
pub mod user;

/// The stage1 interface version implemented (the image manifest's
/// `coreos.com/rkt/stage1/interface-version`).
pub const INTERFACE_VERSION: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum Stage1Error {
    #[error(transparent)]
    Args(#[from] args::ArgsError),
    #[error(transparent)]
    Appc(#[from] appc::AppcError),
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
    #[error(transparent)]
    Hull(#[from] hull::HullError),
    #[error(transparent)]
    Net(#[from] net::NetError),
    #[error(transparent)]
    Pod(#[from] pod::PodError),
    #[error("the stage1 image has no pause program at {0}/bin/busybox")]
    Image(PathBuf),
    #[error("lock fd: {0}")]
    LockFd(String),
    #[error("{0}: {1}")]
    Sys(&'static str, nix::errno::Errno),
    #[error("container {0}: hull reported no pid")]
    NoPid(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("adding the app failed: {0}")]
    Watcher(String),
}

/// The entrypoints by name: the file name hull-stage1 was run as, or its
/// first argument.
pub const ENTRYPOINTS: &[&str] = &[
    "run",
    "enter",
    "gc",
    "stop",
    "app-add",
    "app-start",
    "app-stop",
    "app-rm",
];

/// Runs entrypoint `name`; its exit status. Errors are printed here
/// (`hull-stage1 NAME: …`): 2 for a bad command line, 1 otherwise.
pub fn dispatch(name: &str, args: &[String]) -> i32 {
    let result = match name {
        "run" => run::main(args),
        "enter" => entry::enter(args),
        "gc" => entry::gc(args),
        "stop" => entry::stop(args),
        "app-add" => app::add(args),
        "app-start" => app::start(args),
        "app-stop" => app::stop(args),
        "app-rm" => app::rm(args),
        "app-watch" => app::watch(args),
        other => {
            eprintln!(
                "hull-stage1: unknown entrypoint {other:?} (one of: {})",
                ENTRYPOINTS.join(", ")
            );
            return 2;
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hull-stage1 {name}: {e}");
            if matches!(e, Stage1Error::Args(_)) {
                2
            } else {
                1
            }
        }
    }
}

/// The entrypoint an `argv` names, and its arguments.
pub fn entrypoint(argv: &[String]) -> (String, Vec<String>) {
    let base = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if base.starts_with("hull-stage1") {
        let name = argv.get(1).cloned().unwrap_or_default();
        (name, argv.iter().skip(2).cloned().collect())
    } else {
        (base, argv.iter().skip(1).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn entrypoint_from_argv0_or_first_argument() {
        let (n, a) = entrypoint(&v(&[
            "/pods/u/stage1/rootfs/entrypoints/run",
            "--net=none",
            "u",
        ]));
        assert_eq!((n.as_str(), a), ("run", v(&["--net=none", "u"])));
        let (n, a) = entrypoint(&v(&["/usr/bin/hull-stage1", "gc", "u"]));
        assert_eq!((n.as_str(), a), ("gc", v(&["u"])));
    }

    #[test]
    fn bad_command_lines_exit_2() {
        assert_eq!(dispatch("run", &v(&["--bogus", "u"])), 2);
        assert_eq!(dispatch("nope", &[]), 2);
        assert_eq!(dispatch("stop", &v(&[])), 2);
        assert_eq!(dispatch("run", &v(&["--net=host", "u"])), 1);
    }
}
