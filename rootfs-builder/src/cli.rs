//! Command-line parsing (no argument-parsing dependency; the surface is
//! three flags).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::layout::ExtraFile;
use crate::Error;

/// Usage text printed by `--help` and after usage errors.
pub const USAGE: &str = "\
usage: hull-rootfs-builder --agent PATH --output PATH [--file GUEST_PATH=HOST_PATH[:MODE]]...

Writes hull's guest initramfs, a cpio archive in newc format, to --output
(atomically: a temporary file in the same directory is renamed into place).

  --agent PATH     statically linked hull-agent binary; becomes /init (mode 0755)
  --output PATH    where to write the archive
  --file SPEC      add a regular file: GUEST_PATH=HOST_PATH[:MODE], repeatable.
                   MODE is octal (default 0644); missing parent directories are
                   created with mode 0755. If HOST_PATH contains ':', give MODE.
  -h, --help       print this help

The archive is reproducible: the same inputs give the same bytes.";

/// Options of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The agent binary, installed as `/init`.
    pub agent: PathBuf,
    /// Where to write the archive.
    pub output: PathBuf,
    /// Extra files, in command-line order.
    pub files: Vec<ExtraFile>,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Print [`USAGE`].
    Help,
    /// Build an image.
    Build(Options),
}

/// Parses the arguments after the program name.
///
/// Accepts `--flag VALUE` and `--flag=VALUE`.
pub fn parse<I>(args: I) -> Result<Command, Error>
where
    I: IntoIterator<Item = OsString>,
{
    let mut agent = None;
    let mut output = None;
    let mut files = Vec::new();
    let mut args = args.into_iter();

    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        if bytes == b"-h" || bytes == b"--help" {
            return Ok(Command::Help);
        }
        let (flag, inline) = match bytes.iter().position(|&b| b == b'=') {
            Some(eq) if bytes.starts_with(b"--") => (
                &bytes[..eq],
                Some(OsStr::from_bytes(&bytes[eq + 1..]).to_owned()),
            ),
            _ => (bytes, None),
        };
        let flag_name = String::from_utf8_lossy(flag).into_owned();
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| Error::Usage(format!("{flag_name} needs a value")))
        };
        match flag {
            b"--agent" => set_once(&mut agent, "--agent", value()?)?,
            b"--output" => set_once(&mut output, "--output", value()?)?,
            b"--file" => files.push(ExtraFile::parse(&value()?)?),
            _ => {
                return Err(Error::Usage(format!(
                    "unknown argument '{}'",
                    arg.to_string_lossy()
                )))
            }
        }
    }

    let required = |value: Option<OsString>, flag: &str| match value {
        Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
        Some(_) => Err(Error::Usage(format!("{flag} must not be empty"))),
        None => Err(Error::Usage(format!("missing required {flag} PATH"))),
    };
    Ok(Command::Build(Options {
        agent: required(agent, "--agent")?,
        output: required(output, "--output")?,
        files,
    }))
}

fn set_once(slot: &mut Option<OsString>, flag: &str, value: OsString) -> Result<(), Error> {
    if slot.is_some() {
        return Err(Error::Usage(format!("{flag} given more than once")));
    }
    *slot = Some(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, Error> {
        parse(args.iter().map(OsString::from))
    }

    fn usage_error(args: &[&str]) -> String {
        match parse_strs(args) {
            Err(Error::Usage(msg)) => msg,
            other => panic!("{args:?}: expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn parses_all_flags_in_both_forms() {
        let got = parse_strs(&[
            "--output=/out/initramfs.cpio",
            "--file",
            "etc/hosts=/h",
            "--agent",
            "/build/hull-agent",
            "--file=/bin/x=/y:0700",
        ]);
        let expected = Command::Build(Options {
            agent: PathBuf::from("/build/hull-agent"),
            output: PathBuf::from("/out/initramfs.cpio"),
            files: vec![
                ExtraFile {
                    guest_path: "etc/hosts".to_owned(),
                    host_path: PathBuf::from("/h"),
                    mode: 0o644,
                },
                ExtraFile {
                    guest_path: "bin/x".to_owned(),
                    host_path: PathBuf::from("/y"),
                    mode: 0o700,
                },
            ],
        });
        assert_eq!(got.ok(), Some(expected));
    }

    #[test]
    fn help() {
        assert_eq!(parse_strs(&["--help"]).ok(), Some(Command::Help));
        assert_eq!(
            parse_strs(&["--agent", "a", "-h"]).ok(),
            Some(Command::Help)
        );
    }

    #[test]
    fn usage_errors() {
        assert_eq!(
            usage_error(&["--output", "o"]),
            "missing required --agent PATH"
        );
        assert_eq!(
            usage_error(&["--agent", "a"]),
            "missing required --output PATH"
        );
        assert_eq!(usage_error(&["--agent"]), "--agent needs a value");
        assert_eq!(
            usage_error(&["--agent", "a", "--agent", "b", "--output", "o"]),
            "--agent given more than once"
        );
        assert_eq!(
            usage_error(&["--agent=", "--output", "o"]),
            "--agent must not be empty"
        );
        assert_eq!(usage_error(&["--bogus"]), "unknown argument '--bogus'");
        assert_eq!(usage_error(&["stray"]), "unknown argument 'stray'");
    }

    #[test]
    fn bad_file_syntax_is_an_error() {
        let result = parse_strs(&["--agent", "a", "--output", "o", "--file", "just-a-path"]);
        match result {
            Err(e @ Error::FileSpec { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with("invalid --file argument 'just-a-path'"),
                    "{msg}"
                );
            }
            other => panic!("expected a --file syntax error, got {other:?}"),
        }
    }
}
