//! The `hull` CLI, driven as an engine drives runc: `--root` of the
//! stage1's own (`/run/hull-rkt` unless `HULL_RKT_ROOT` says otherwise),
//! the binary from `HULL_BIN` or `/usr/local/bin/hull`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use serde_json::Value;

pub const DEFAULT_BIN: &str = "/usr/local/bin/hull";
pub const DEFAULT_ROOT: &str = "/run/hull-rkt";

#[derive(Debug, thiserror::Error)]
pub enum HullError {
    #[error("cannot run {bin} {command}: {source}")]
    Spawn {
        bin: PathBuf,
        command: String,
        source: std::io::Error,
    },
    #[error("hull {command} {id} failed ({status}){stderr}")]
    Failed {
        command: &'static str,
        id: String,
        status: ExitStatus,
        stderr: String,
    },
    #[error("hull state {id}: unexpected output: {output}")]
    BadState { id: String, output: String },
}

#[derive(Debug, Clone)]
pub struct Hull {
    pub bin: PathBuf,
    pub root: PathBuf,
    pub debug: bool,
}

impl Hull {
    /// From the environment (`HULL_BIN`, `HULL_RKT_ROOT`).
    pub fn from_env(debug: bool) -> Self {
        let var = |k: &str, d: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(d))
        };
        Self {
            bin: var("HULL_BIN", DEFAULT_BIN),
            root: var("HULL_RKT_ROOT", DEFAULT_ROOT),
            debug,
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root).args(args);
        if self.debug {
            eprintln!(
                "stage1: {} --root {} {}",
                self.bin.display(),
                self.root.display(),
                args.join(" ")
            );
        }
        c
    }

    fn spawn_err(&self, command: &str) -> impl Fn(std::io::Error) -> HullError + '_ {
        let command = command.to_string();
        move |source| HullError::Spawn {
            bin: self.bin.clone(),
            command: command.clone(),
            source,
        }
    }

    /// Runs a command whose stderr is only for the error message.
    fn quiet(&self, command: &'static str, args: &[&str], id: &str) -> Result<String, HullError> {
        let out = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .map_err(self.spawn_err(command))?;
        if !out.status.success() {
            let e = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(HullError::Failed {
                command,
                id: id.into(),
                status: out.status,
                stderr: if e.is_empty() { e } else { format!(": {e}") },
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `hull create --bundle B --pid-file P ID`: the container's process
    /// keeps this process's stdout and stderr (stdin as given).
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        stdin: Stdio,
    ) -> Result<(), HullError> {
        self.create_with(id, bundle, pid_file, stdin, Stdio::inherit())
    }

    /// `create` with the container's stdout given (stderr inherited).
    pub fn create_with(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        stdin: Stdio,
        stdout: Stdio,
    ) -> Result<(), HullError> {
        let b = bundle.to_string_lossy();
        let p = pid_file.to_string_lossy();
        let status = self
            .command(&["create", "--bundle", &b, "--pid-file", &p, id])
            .stdin(stdin)
            .stdout(stdout)
            .status()
            .map_err(self.spawn_err("create"))?;
        if !status.success() {
            return Err(HullError::Failed {
                command: "create",
                id: id.into(),
                status,
                stderr: String::new(),
            });
        }
        Ok(())
    }

    pub fn start(&self, id: &str) -> Result<(), HullError> {
        self.quiet("start", &["start", id], id).map(drop)
    }

    pub fn kill(&self, id: &str, signal: &str) -> Result<(), HullError> {
        self.quiet("kill", &["kill", id, signal], id).map(drop)
    }

    pub fn delete_force(&self, id: &str) -> Result<(), HullError> {
        self.quiet("delete", &["delete", "--force", id], id)
            .map(drop)
    }

    /// `hull state ID` as JSON.
    pub fn state(&self, id: &str) -> Result<Value, HullError> {
        let out = self.quiet("state", &["state", id], id)?;
        serde_json::from_str(&out).map_err(|_| HullError::BadState {
            id: id.into(),
            output: out.trim().to_string(),
        })
    }

    /// The ids under the root that are `prefix` or start with `prefix-`.
    pub fn ids_of(&self, prefix: &str) -> Result<Vec<String>, HullError> {
        let out = self.quiet("list", &["list", "--format", "json"], prefix)?;
        let list: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        Ok(list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["id"].as_str())
            .filter(|id| *id == prefix || id.starts_with(&format!("{prefix}-")))
            .map(str::to_string)
            .collect())
    }

    /// `hull exec [--tty] ID CMD…` with this process's stdio; its status.
    pub fn exec(&self, id: &str, tty: bool, cmd: &[String]) -> Result<ExitStatus, HullError> {
        let mut args = vec!["exec"];
        if tty {
            args.push("--tty");
        }
        args.push(id);
        args.extend(cmd.iter().map(String::as_str));
        self.command(&args).status().map_err(self.spawn_err("exec"))
    }
}
