//! Command-line parsing, on clap. The surface is three flags, taken as
//! `--flag VALUE` or `--flag=VALUE`; paths may be any bytes.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;

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

/// The command line as clap sees it (values still unchecked).
#[derive(Parser, Debug)]
#[command(
    name = "hull-rootfs-builder",
    disable_help_flag = true,
    disable_version_flag = true
)]
struct Args {
    /// Statically linked hull-agent binary; becomes /init
    #[arg(long, value_name = "PATH", value_parser = clap::builder::OsStringValueParser::new())]
    agent: Option<OsString>,
    /// Where to write the archive
    #[arg(long, value_name = "PATH", value_parser = clap::builder::OsStringValueParser::new())]
    output: Option<OsString>,
    /// Add a regular file: GUEST_PATH=HOST_PATH[:MODE], repeatable
    #[arg(long = "file", value_name = "SPEC", value_parser = clap::builder::OsStringValueParser::new())]
    files: Vec<OsString>,
    /// Print the help
    #[arg(short, long)]
    help: bool,
}

/// Parses the arguments after the program name.
pub fn parse<I>(args: I) -> Result<Command, Error>
where
    I: IntoIterator<Item = OsString>,
{
    let argv = std::iter::once(OsString::from("hull-rootfs-builder")).chain(args);
    let args = Args::try_parse_from(argv).map_err(|e| Error::Usage(clap_message(&e)))?;
    if args.help {
        return Ok(Command::Help);
    }
    let required = |value: Option<OsString>, flag: &str| match value {
        Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
        Some(_) => Err(Error::Usage(format!("{flag} must not be empty"))),
        None => Err(Error::Usage(format!("missing required {flag} PATH"))),
    };
    let files = args
        .files
        .iter()
        .map(|f| ExtraFile::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Command::Build(Options {
        agent: required(args.agent, "--agent")?,
        output: required(args.output, "--output")?,
        files,
    }))
}

/// clap's error as one line: `unexpected argument '--bogus' found`.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
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
        assert_eq!(parse_strs(&["-h"]).ok(), Some(Command::Help));
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
        assert_eq!(
            usage_error(&["--agent"]),
            "a value is required for '--agent <PATH>' but none was supplied"
        );
        assert_eq!(
            usage_error(&["--agent", "a", "--agent", "b", "--output", "o"]),
            "the argument '--agent <PATH>' cannot be used multiple times"
        );
        assert_eq!(
            usage_error(&["--agent=", "--output", "o"]),
            "--agent must not be empty"
        );
        assert_eq!(
            usage_error(&["--bogus"]),
            "unexpected argument '--bogus' found"
        );
        assert_eq!(usage_error(&["stray"]), "unexpected argument 'stray' found");
    }

    #[test]
    fn paths_need_not_be_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let agent = OsString::from_vec(b"/a\xff".to_vec());
        let args = vec!["--agent".into(), agent.clone(), "--output=o".into()];
        let Ok(Command::Build(o)) = parse(args) else {
            panic!("not parsed")
        };
        assert_eq!(o.agent, PathBuf::from(agent));
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
