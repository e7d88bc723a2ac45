//! One module per `hull` subcommand.

pub mod args;
pub mod container;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod hooks;
pub mod kill;
pub mod lifecycle;
pub mod list;
pub mod pause;
pub mod ps;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;
pub mod version;

#[cfg(test)]
pub mod testutil;

use anyhow::bail;

/// The single container id a command takes, worded like runc's check.
pub fn one_id<'a>(command: &str, args: &'a [String]) -> anyhow::Result<&'a str> {
    if let Some(flag) = args.iter().find(|a| a.starts_with('-') && a.len() > 1) {
        bail!("unknown option {flag}");
    }
    match args {
        [id] => Ok(id),
        _ => bail!("{command:?} requires exactly 1 argument(s)"),
    }
}

/// Splits `--flag=value` into its parts (`-f` forms have no inline value).
pub fn split_flag(arg: &str) -> (&str, Option<&str>) {
    match arg.split_once('=') {
        Some((f, v)) if f.starts_with("--") => (f, Some(v)),
        _ => (arg, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn exactly_one_id() {
        assert_eq!(one_id("state", &args("c1")).unwrap(), "c1");
        for (line, want) in [
            ("", "\"state\" requires exactly 1 argument(s)"),
            ("a b", "\"state\" requires exactly 1 argument(s)"),
            ("--x c1", "unknown option --x"),
        ] {
            assert_eq!(one_id("state", &args(line)).unwrap_err().to_string(), want);
        }
    }
}
