//! `hull run [--bundle DIR] [--timings] [--mem MIB] [--cpus N] ID`: runs the
//! bundle's process in a new microVM sandbox and exits with its status.

use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::Global;
use runtime::bundle::Bundle;
use runtime::sandbox::run::{self, RunOptions, DEFAULT_OUTPUT_GRACE};
use runtime::sandbox::stdio::HostStdio;
use runtime::sandbox::{Artifacts, SandboxConfig, DEFAULT_CPUS, DEFAULT_MEM_MIB};

pub const USAGE: &str = "usage: hull run [--bundle DIR] [--timings] [--mem MIB] [--cpus N] ID";

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub id: String,
    /// Defaults to the current directory, as with runc.
    pub bundle: PathBuf,
    pub timings: bool,
    pub mem_mib: u32,
    pub cpus: u32,
}

/// Parses the arguments after `run`.
pub fn parse(args: &[String]) -> anyhow::Result<Args> {
    let mut parsed = Args {
        id: String::new(),
        bundle: PathBuf::from("."),
        timings: false,
        mem_mib: DEFAULT_MEM_MIB,
        cpus: DEFAULT_CPUS,
    };
    let mut id = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .with_context(|| format!("{flag} needs a value"))
        };
        match flag {
            "-b" | "--bundle" => parsed.bundle = value()?.into(),
            "--timings" => parsed.timings = true,
            "--mem" => {
                let v = value()?;
                parsed.mem_mib = v.parse().with_context(|| format!("--mem {v:?}"))?;
            }
            "--cpus" => {
                let v = value()?;
                parsed.cpus = v.parse().with_context(|| format!("--cpus {v:?}"))?;
            }
            f if f.starts_with('-') && f.len() > 1 => bail!("unknown option {f}"),
            _ if id.is_some() => bail!("unexpected argument {arg:?}"),
            _ => id = Some(arg.clone()),
        }
    }
    parsed.id = id.context("the container id is missing")?;
    Ok(parsed)
}

/// Runs the container; the workload's exit status (128+N for signal N).
pub fn main(global: &Global, args: &[String]) -> anyhow::Result<i32> {
    let args = parse(args)?;
    let bundle = Bundle::load(&args.bundle)?;
    let mut sandbox = SandboxConfig::new(&args.id, Artifacts::locate()?);
    sandbox.state_root = global.root.clone();
    sandbox.mem_mib = args.mem_mib;
    sandbox.cpus = args.cpus;
    let opts = RunOptions {
        sandbox,
        output_grace: DEFAULT_OUTPUT_GRACE,
        forward_signals: true,
    };
    let outcome = run::run(&opts, &bundle, HostStdio::inherit()?)?;
    if args.timings {
        eprintln!("{}", outcome.timings.to_json());
    }
    Ok(outcome.status.shell_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options_and_the_id() {
        let a = parse(&args("--bundle /b --timings --mem=512 --cpus 2 c1")).unwrap();
        assert_eq!(
            a,
            Args {
                id: "c1".into(),
                bundle: "/b".into(),
                timings: true,
                mem_mib: 512,
                cpus: 2
            }
        );
        let a = parse(&args("c2 -b=x")).unwrap_err();
        assert!(a.to_string().contains("unknown option -b=x"), "{a}");
        let a = parse(&args("c2")).unwrap();
        assert_eq!(
            (a.bundle, a.mem_mib, a.cpus),
            (".".into(), DEFAULT_MEM_MIB, DEFAULT_CPUS)
        );
    }

    #[test]
    fn bad_command_lines_are_refused() {
        for (line, want) in [
            ("", "id is missing"),
            ("--bundle", "--bundle needs a value"),
            ("--mem lots c", "--mem \"lots\""),
            ("--frobnicate c", "unknown option --frobnicate"),
            ("a b", "unexpected argument \"b\""),
        ] {
            let e = format!("{:#}", parse(&args(line)).unwrap_err());
            assert!(e.contains(want), "{line}: {e}");
        }
    }
}
