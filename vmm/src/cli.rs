//! Command-line parsing for `hull-vmm` (kept in the library so it is tested).

use std::path::PathBuf;
use std::time::Duration;

use crate::devices::virtio::fs::FsConfig;
use crate::vm::{Console, VmConfig};

pub const USAGE: &str = "\
usage: hull-vmm --kernel VMLINUX [--initrd CPIO] [--cmdline ARGS] [--mem MIB] [--cpus N]
                [--console FILE|-|none] [--timeout SECONDS] [--rng] [--vsock CID:PATH]
                [--fs TAG=DIR[:ro]]... [--timings]

Boots a KVM microVM straight into an uncompressed PVH vmlinux and exits when
the guest powers off: 0 for a clean power-off, 1 when the guest panicked,
reset, triple-faulted or the VMM failed, 2 for bad arguments.

  --kernel VMLINUX   ELF vmlinux with a PVH entry note (CONFIG_PVH=y)
  --initrd CPIO      initramfs, loaded as the PVH module
  --cmdline ARGS     kernel command line (default: console=ttyS0 reboot=k panic=-1 quiet ...)
  --mem MIB          guest RAM in MiB (default 128)
  --cpus N           vCPUs, 1 to 32 (default 1)
  --console DEST     serial console output: a file, - for stdout (default), none
  --timeout SECONDS  tear the VM down and fail after this long
  --rng              attach a virtio-rng device (entropy from the host's getrandom)
  --vsock CID:PATH   attach a virtio-vsock device with guest CID, host side the Unix
                     socket PATH (CONNECT <port> to reach the guest; guest connections
                     to CID 2 port P go to PATH_P)
  --fs TAG=DIR[:ro]  share the host directory DIR over virtio-fs under the mount tag
                     TAG (1 to 36 bytes), read-only with :ro; repeatable. In the
                     guest: mount -t virtiofs TAG /mnt
  --timings          print JSON lines of boot timings and memory on stderr
";

/// The longest `--timeout` accepted.
const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Command {
    Run { config: VmConfig, timings: bool },
    Help,
    Version,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CliError {
    #[error("missing value for {0}")]
    MissingValue(String),
    #[error("invalid value {value:?} for {flag}: {reason}")]
    Invalid {
        flag: String,
        value: String,
        reason: String,
    },
    #[error("unknown argument {0:?}")]
    Unknown(String),
    #[error("--kernel is required")]
    NoKernel,
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, CliError>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e: T::Err| CliError::Invalid {
        flag: flag.into(),
        value: value.into(),
        reason: e.to_string(),
    })
}

/// `TAG=DIR[:ro]`, validated (the directory must exist).
fn fs_share(flag: &str, value: &str) -> Result<FsConfig, CliError> {
    let invalid = |reason: String| CliError::Invalid {
        flag: flag.into(),
        value: value.into(),
        reason,
    };
    let (tag, dir) = value
        .split_once('=')
        .ok_or_else(|| invalid("expected TAG=DIR[:ro]".into()))?;
    let (dir, readonly) = match dir.strip_suffix(":ro") {
        Some(dir) => (dir, true),
        None => (dir, false),
    };
    if dir.is_empty() {
        return Err(invalid("expected TAG=DIR[:ro]".into()));
    }
    FsConfig::new(tag, dir, readonly).map_err(|e| invalid(e.to_string()))
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, CliError> {
    let mut config = VmConfig::default();
    let mut kernel = None;
    let mut timings = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| CliError::MissingValue(flag.clone()))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--kernel" => kernel = Some(PathBuf::from(value()?)),
            "--initrd" => config.initrd = Some(PathBuf::from(value()?)),
            "--cmdline" => config.cmdline = Some(value()?),
            "--mem" => config.mem_mib = number(&flag, &value()?)?,
            "--cpus" => config.cpus = number(&flag, &value()?)?,
            "--console" => {
                config.console = match value()?.as_str() {
                    "-" => Console::Stdout,
                    "none" => Console::Discard,
                    path => Console::File(path.into()),
                }
            }
            "--timeout" => {
                let secs: f64 = number(&flag, &value()?)?;
                let timeout = Duration::try_from_secs_f64(secs)
                    .ok()
                    .filter(|t| !t.is_zero() && *t <= MAX_TIMEOUT);
                config.timeout = Some(timeout.ok_or_else(|| CliError::Invalid {
                    flag,
                    value: secs.to_string(),
                    reason: "must be more than 0 and at most a year of seconds".into(),
                })?);
            }
            "--timings" => timings = true,
            "--rng" => config.rng = true,
            "--vsock" => {
                let v = value()?;
                let (cid, path) = v.split_once(':').ok_or_else(|| CliError::Invalid {
                    flag: flag.clone(),
                    value: v.clone(),
                    reason: "expected CID:PATH".into(),
                })?;
                config.vsock = Some((number(&flag, cid)?, PathBuf::from(path)));
            }
            "--fs" => config.fs.push(fs_share(&flag, &value()?)?),
            _ => return Err(CliError::Unknown(arg)),
        }
    }
    config.kernel = kernel.ok_or(CliError::NoKernel)?;
    Ok(Command::Run { config, timings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_a_full_command_line() {
        let Command::Run { config, timings } = parse(args(
            "--kernel k --initrd i --mem=512 --cpus 2 --console none --timeout 1.5 --timings --rng",
        ))
        .unwrap() else {
            panic!("not a run")
        };
        assert_eq!(config.kernel, PathBuf::from("k"));
        assert_eq!(config.initrd, Some(PathBuf::from("i")));
        assert_eq!((config.mem_mib, config.cpus), (512, 2));
        assert_eq!(config.console, Console::Discard);
        assert_eq!(config.timeout, Some(Duration::from_millis(1500)));
        assert!(timings && config.rng);
        let Command::Run { config, .. } = parse(args("--kernel k --vsock 3:/run/v.sock")).unwrap()
        else {
            panic!()
        };
        assert_eq!(config.vsock, Some((3, PathBuf::from("/run/v.sock"))));
        assert!(matches!(
            parse(args("--kernel k --vsock 3")),
            Err(CliError::Invalid { .. })
        ));
        assert!(matches!(
            parse(args("--kernel k --vsock x:/p")),
            Err(CliError::Invalid { .. })
        ));
    }

    #[test]
    fn cmdline_keeps_its_spaces_and_defaults_apply() {
        let mut a = args("--kernel k --cmdline");
        a.push("console=ttyS0 quiet".into());
        let Command::Run { config, timings } = parse(a).unwrap() else {
            panic!()
        };
        assert_eq!(config.cmdline.as_deref(), Some("console=ttyS0 quiet"));
        assert_eq!((config.mem_mib, config.cpus, timings), (128, 1, false));
        assert_eq!(config.console, Console::Stdout);
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert_eq!(parse(args("--initrd i")).unwrap_err(), CliError::NoKernel);
        assert_eq!(
            parse(args("--kernel")).unwrap_err(),
            CliError::MissingValue("--kernel".into())
        );
        assert!(matches!(
            parse(args("--kernel k --mem lots")),
            Err(CliError::Invalid { .. })
        ));
        for bad in ["-1", "0", "1e300", "NaN", "inf"] {
            let a = args(&format!("--kernel k --timeout {bad}"));
            assert!(matches!(parse(a), Err(CliError::Invalid { .. })), "{bad}");
        }
        assert_eq!(
            parse(args("--kernel k --bogus")).unwrap_err(),
            CliError::Unknown("--bogus".into())
        );
        assert!(matches!(parse(args("--help")), Ok(Command::Help)));
    }

    #[test]
    fn fs_shares_are_repeatable_and_validated() {
        let dir = std::env::temp_dir().join(format!("hull-cli-fs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        let Command::Run { config, .. } = parse(args(&format!(
            "--kernel k --fs rootfs={d} --fs=data={d}:ro"
        )))
        .unwrap() else {
            panic!()
        };
        assert_eq!(config.fs.len(), 2);
        assert_eq!(
            (config.fs[0].tag.as_str(), config.fs[0].readonly),
            ("rootfs", false)
        );
        assert_eq!(config.fs[0].shared_dir, dir);
        assert_eq!(
            (config.fs[1].tag.as_str(), config.fs[1].readonly),
            ("data", true)
        );
        assert_eq!(config.fs[1].shared_dir, dir);
        let long = "t".repeat(37);
        for bad in [
            format!("{d}"),
            format!("={d}"),
            "t=".to_string(),
            "t=:ro".to_string(),
            format!("{long}={d}"),
            format!("t={d}/missing"),
        ] {
            let a = args(&format!("--kernel k --fs {bad}"));
            assert!(matches!(parse(a), Err(CliError::Invalid { .. })), "{bad}");
        }
        assert_eq!(
            parse(args("--kernel k --fs")).unwrap_err(),
            CliError::MissingValue("--fs".into())
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
