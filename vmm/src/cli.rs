//! Command-line parsing for `hull-vmm` (kept in the library so it is tested).
//! Every flag spelling of the earlier hand-written parser is kept
//! (`--flag VALUE` and `--flag=VALUE`).

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use crate::devices::virtio::fs::FsConfig;
use crate::devices::virtio::net::{tap::valid_tap_name, NetConfig, TapSource, MAX_NICS, MIN_MTU};
use crate::vm::{Console, VmConfig};

/// The longest `--timeout` accepted.
const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Boots a KVM microVM straight into an uncompressed PVH vmlinux and exits
/// when the guest powers off: 0 for a clean power-off (or a stop asked for
/// on the control channel), 1 when the guest panicked, reset,
/// triple-faulted, a vCPU or device thread failed or the VMM failed, 2 for
/// bad arguments.
#[derive(Debug, Parser)]
#[command(name = "hull-vmm", version)]
struct Cli {
    /// ELF vmlinux with a PVH entry note (CONFIG_PVH=y)
    #[arg(long, value_name = "VMLINUX")]
    kernel: PathBuf,
    /// initramfs, loaded as the PVH module
    #[arg(long, value_name = "CPIO")]
    initrd: Option<PathBuf>,
    /// kernel command line (default: console=ttyS0 reboot=k panic=-1 quiet ...)
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    cmdline: Option<String>,
    /// guest RAM in MiB
    #[arg(long, value_name = "MIB", default_value_t = 128)]
    mem: u64,
    /// vCPUs, 1 to 32
    #[arg(long, value_name = "N", default_value_t = 1)]
    cpus: u32,
    /// serial console output: a file, - for stdout, none
    #[arg(long, value_name = "FILE|-|none", default_value = "-", value_parser = console)]
    console: Console,
    /// tear the VM down and fail after this long
    #[arg(long, value_name = "SECONDS", value_parser = timeout)]
    timeout: Option<Duration>,
    /// attach a virtio-rng device (entropy from the host's getrandom)
    #[arg(long)]
    rng: bool,
    /// attach a virtio-vsock device with guest CID, host side the Unix socket
    /// PATH (CONNECT <port> to reach the guest; guest connections to CID 2
    /// port P go to PATH_P)
    #[arg(long, value_name = "CID:PATH", value_parser = vsock)]
    vsock: Option<(u64, PathBuf)>,
    /// share the host directory DIR over virtio-fs under the mount tag TAG
    /// (1 to 36 bytes), read-only with :ro; repeatable. In the guest:
    /// mount -t virtiofs TAG /mnt
    #[arg(long, value_name = "TAG=DIR[:ro]", value_parser = fs_share)]
    fs: Vec<FsConfig>,
    /// attach a virtio-net NIC (repeatable, up to 16, in this order: eth0,
    /// eth1, ...) over an inherited tap fd N (opened with
    /// IFF_TAP|IFF_NO_PI|IFF_VNET_HDR; hull-vmm takes it over) or the tap
    /// NAME, opened in hull-vmm's own network namespace. MAC: the guest's
    /// unicast address; MTU (68-65535, default 1500): the largest MTU the
    /// guest may use, offered as VIRTIO_NET_F_MTU
    #[arg(
        long,
        value_name = "fd=N|tap=NAME,mac=MAC[,mtu=MTU]",
        value_parser = net_nic
    )]
    net: Vec<NetConfig>,
    /// print JSON lines of boot timings and memory on stderr
    #[arg(long)]
    timings: bool,
    /// an inherited SOCK_SEQPACKET socket for the typed control channel
    /// (events out, requests in; see the vmm-control crate)
    #[arg(long, value_name = "N")]
    control_fd: Option<RawFd>,
    /// Test only: make this device's thread (virtio-fs:TAG, virtio-vsock,
    /// virtio-net:INDEX) fail on its first queue notification.
    #[arg(long, value_name = "DEVICE", hide = true)]
    inject_device_fault: Option<String>,
}

/// What the command line asks for.
#[derive(Debug, Clone)]
pub struct Args {
    pub config: VmConfig,
    pub timings: bool,
    pub control_fd: Option<RawFd>,
}

fn console(value: &str) -> Result<Console, String> {
    Ok(match value {
        "-" => Console::Stdout,
        "none" => Console::Discard,
        path => Console::File(path.into()),
    })
}

fn timeout(value: &str) -> Result<Duration, String> {
    let secs: f64 = value.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|t| !t.is_zero() && *t <= MAX_TIMEOUT)
        .ok_or_else(|| "must be more than 0 and at most a year of seconds".into())
}

fn vsock(value: &str) -> Result<(u64, PathBuf), String> {
    let (cid, path) = value.split_once(':').ok_or("expected CID:PATH")?;
    let cid = cid.parse().map_err(|e| format!("CID: {e}"))?;
    Ok((cid, PathBuf::from(path)))
}

/// `TAG=DIR[:ro]`, validated (the directory must exist).
fn fs_share(value: &str) -> Result<FsConfig, String> {
    let (tag, dir) = value.split_once('=').ok_or("expected TAG=DIR[:ro]")?;
    let (dir, readonly) = match dir.strip_suffix(":ro") {
        Some(dir) => (dir, true),
        None => (dir, false),
    };
    if dir.is_empty() {
        return Err("expected TAG=DIR[:ro]".into());
    }
    FsConfig::new(tag, dir, readonly).map_err(|e| e.to_string())
}

/// `fd=N,mac=MAC[,mtu=MTU]` or `tap=NAME,mac=MAC[,mtu=MTU]`, any order.
fn net_nic(value: &str) -> Result<NetConfig, String> {
    let (mut source, mut mac, mut mtu) = (None, None, None);
    for part in value.split(',') {
        let (key, val) = part
            .split_once('=')
            .ok_or_else(|| format!("expected KEY=VALUE, got {part:?}"))?;
        let slot_taken = match key {
            "fd" | "tap" => source.is_some(),
            "mac" => mac.is_some(),
            "mtu" => mtu.is_some(),
            _ => return Err(format!("unknown key {key:?} (fd, tap, mac, mtu)")),
        };
        if slot_taken {
            return Err(format!("{key} given twice, or both fd and tap"));
        }
        match key {
            "fd" => {
                let fd: i32 = val.parse().map_err(|e| format!("fd {val:?}: {e}"))?;
                if fd < 3 {
                    return Err(format!("fd {fd} is a standard stream, not a tap"));
                }
                source = Some(TapSource::Fd(fd));
            }
            "tap" => {
                if !valid_tap_name(val) {
                    return Err(format!("tap name {val:?} is not a valid interface name"));
                }
                source = Some(TapSource::Name(val.to_string()));
            }
            "mac" => mac = Some(parse_mac(val)?),
            _ => {
                let m: u16 = val.parse().map_err(|e| format!("mtu {val:?}: {e}"))?;
                if m < MIN_MTU {
                    return Err(format!("mtu {m} is below {MIN_MTU}"));
                }
                mtu = Some(m);
            }
        }
    }
    Ok(NetConfig {
        source: source.ok_or("expected fd=N or tap=NAME")?,
        mac: mac.ok_or("expected mac=aa:bb:cc:dd:ee:ff")?,
        mtu,
    })
}

/// Six `:`-separated hex octets, unicast and not all zero.
fn parse_mac(value: &str) -> Result<[u8; 6], String> {
    let bad = || format!("mac {value:?}: expected six hex octets like 02:00:00:00:00:01");
    let mut mac = [0u8; 6];
    let mut parts = value.split(':');
    for octet in &mut mac {
        let p = parts.next().filter(|p| p.len() == 2).ok_or_else(bad)?;
        *octet = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    if mac[0] & 1 != 0 || mac == [0; 6] {
        return Err(format!("mac {value:?} is multicast or all zero"));
    }
    Ok(mac)
}

/// At most [`MAX_NICS`], each fd, tap name and MAC once.
fn check_nics(nics: &[NetConfig]) -> Result<(), String> {
    if nics.len() > MAX_NICS {
        return Err(format!("{} NICs given, at most {MAX_NICS}", nics.len()));
    }
    for (i, a) in nics.iter().enumerate() {
        for b in &nics[..i] {
            if a.source == b.source {
                return Err(format!("{:?} is used by two NICs", a.source));
            }
            if a.mac == b.mac {
                return Err("two NICs have the same mac".into());
            }
        }
    }
    Ok(())
}

/// Parses the arguments after the program name. `--help` and `--version`
/// come back as errors of kind `DisplayHelp`/`DisplayVersion`;
/// `clap::Error::exit` prints them (exit 0) or a usage error (exit 2).
pub fn parse<I, T>(args: I) -> Result<Args, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv = std::iter::once(OsString::from("hull-vmm")).chain(args.into_iter().map(Into::into));
    let cli = Cli::try_parse_from(argv)?;
    check_nics(&cli.net)
        .map_err(|e| Cli::command().error(ErrorKind::ValueValidation, format!("--net: {e}")))?;
    Ok(Args {
        config: VmConfig {
            kernel: cli.kernel,
            initrd: cli.initrd,
            cmdline: cli.cmdline,
            mem_mib: cli.mem,
            cpus: cli.cpus,
            console: cli.console,
            timeout: cli.timeout,
            rng: cli.rng,
            vsock: cli.vsock,
            fs: cli.fs,
            net: cli.net,
            inject_device_fault: cli.inject_device_fault,
        },
        timings: cli.timings,
        control_fd: cli.control_fd,
    })
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;

    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn kind(s: &str) -> ErrorKind {
        parse(args(s)).unwrap_err().kind()
    }

    #[test]
    fn parses_a_full_command_line() {
        let a = parse(args(
            "--kernel k --initrd i --mem=512 --cpus 2 --console none --timeout 1.5 --timings --rng \
             --control-fd 5",
        ))
        .unwrap();
        let config = a.config;
        assert_eq!(config.kernel, PathBuf::from("k"));
        assert_eq!(config.initrd, Some(PathBuf::from("i")));
        assert_eq!((config.mem_mib, config.cpus), (512, 2));
        assert_eq!(config.console, Console::Discard);
        assert_eq!(config.timeout, Some(Duration::from_millis(1500)));
        assert!(a.timings && config.rng);
        assert_eq!(a.control_fd, Some(5));
        let config = parse(args("--kernel k --vsock 3:/run/v.sock"))
            .unwrap()
            .config;
        assert_eq!(config.vsock, Some((3, PathBuf::from("/run/v.sock"))));
        assert_eq!(kind("--kernel k --vsock 3"), ErrorKind::ValueValidation);
        assert_eq!(kind("--kernel k --vsock x:/p"), ErrorKind::ValueValidation);
        let config = parse(args("--kernel=k --console=/tmp/c.log"))
            .unwrap()
            .config;
        assert_eq!(config.console, Console::File("/tmp/c.log".into()));
    }

    #[test]
    fn cmdline_keeps_its_spaces_and_defaults_apply() {
        let mut a = args("--kernel k --cmdline");
        a.push("console=ttyS0 quiet".into());
        let a = parse(a).unwrap();
        assert_eq!(a.config.cmdline.as_deref(), Some("console=ttyS0 quiet"));
        assert_eq!(
            (a.config.mem_mib, a.config.cpus, a.timings),
            (128, 1, false)
        );
        assert_eq!(a.config.console, Console::Stdout);
        assert_eq!((a.control_fd, a.config.inject_device_fault), (None, None));
        let mut a = args("--kernel k --cmdline");
        a.push("-- init args".into());
        let config = parse(a).unwrap().config;
        assert_eq!(config.cmdline.as_deref(), Some("-- init args"));
    }

    #[test]
    fn bad_arguments_are_errors_of_their_kind() {
        assert_eq!(kind("--initrd i"), ErrorKind::MissingRequiredArgument);
        assert_eq!(kind("--kernel"), ErrorKind::InvalidValue);
        assert_eq!(kind("--kernel k --mem lots"), ErrorKind::ValueValidation);
        for bad in ["0", "1e300", "NaN", "inf", "x"] {
            assert_eq!(
                kind(&format!("--kernel k --timeout {bad}")),
                ErrorKind::ValueValidation,
                "{bad}"
            );
        }
        assert!(parse(args("--kernel k --timeout -1")).is_err());
        assert_eq!(kind("--kernel k --bogus"), ErrorKind::UnknownArgument);
        assert_eq!(kind("--help"), ErrorKind::DisplayHelp);
        assert_eq!(kind("-h"), ErrorKind::DisplayHelp);
        assert_eq!(kind("--version"), ErrorKind::DisplayVersion);
        assert_eq!(kind("-V"), ErrorKind::DisplayVersion);
        assert_eq!(parse(args("--kernel")).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn nics_are_repeatable_and_validated() {
        let config = parse(args(
            "--kernel k --net fd=5,mac=02:00:00:00:00:01 \
             --net=mtu=9000,tap=hull0,mac=02:AB:cd:00:00:02",
        ))
        .unwrap()
        .config;
        assert_eq!(config.net.len(), 2);
        assert_eq!(config.net[0].source, TapSource::Fd(5));
        assert_eq!(config.net[0].mac, [2, 0, 0, 0, 0, 1]);
        assert_eq!((config.net[0].mtu, config.net[0].mtu()), (None, 1500));
        assert_eq!(config.net[1].source, TapSource::Name("hull0".into()));
        assert_eq!(config.net[1].mac, [2, 0xab, 0xcd, 0, 0, 2]);
        assert_eq!(config.net[1].mtu, Some(9000));
        let mac = "mac=02:00:00:00:00:01";
        for bad in [
            "fd=5".to_string(),
            mac.to_string(),
            format!("fd=5,tap=x,{mac}"),
            format!("fd=2,{mac}"),
            format!("fd=x,{mac}"),
            format!("fd=5,{mac},{mac}"),
            format!("tap=,{mac}"),
            format!("tap=a/b,{mac}"),
            format!("tap=sixteen-chars-xx,{mac}"),
            format!("fd=5,{mac},mtu=67"),
            format!("fd=5,{mac},mtu=65536"),
            format!("fd=5,{mac},speed=10"),
            format!("fd=5,{mac},mtu"),
            "fd=5,mac=01:00:00:00:00:01".to_string(),
            "fd=5,mac=00:00:00:00:00:00".to_string(),
            "fd=5,mac=02:00:00:00:00".to_string(),
            "fd=5,mac=02:00:00:00:00:01:02".to_string(),
            "fd=5,mac=02:00:00:00:00:zz".to_string(),
            "fd=5,mac=2:00:00:00:00:001".to_string(),
        ] {
            let e = parse(args(&format!("--kernel k --net {bad}"))).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ValueValidation, "{bad}");
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
        assert_eq!(
            kind("--kernel k --net fd=5,mac=02:00:00:00:00:01 --net fd=5,mac=02:00:00:00:00:02"),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind("--kernel k --net fd=5,mac=02:00:00:00:00:01 --net fd=6,mac=02:00:00:00:00:01"),
            ErrorKind::ValueValidation
        );
        let many: String = (0..17)
            .map(|i| format!(" --net fd={},mac=02:00:00:00:00:{i:02x}", i + 3))
            .collect();
        let e = parse(args(&format!("--kernel k{many}"))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        assert!(e.to_string().contains("at most 16"), "{e}");
        let sixteen: String = (0..16)
            .map(|i| format!(" --net fd={},mac=02:00:00:00:00:{i:02x}", i + 3))
            .collect();
        assert_eq!(
            parse(args(&format!("--kernel k{sixteen}")))
                .unwrap()
                .config
                .net
                .len(),
            16
        );
        let help = parse(args("--help")).unwrap_err().to_string();
        assert!(
            help.contains("--net <fd=N|tap=NAME,mac=MAC[,mtu=MTU]>"),
            "{help}"
        );
    }

    #[test]
    fn the_fault_injection_is_hidden_but_parsed() {
        let a = parse(args("--kernel k --inject-device-fault virtio-vsock")).unwrap();
        assert_eq!(
            a.config.inject_device_fault.as_deref(),
            Some("virtio-vsock")
        );
        let help = parse(args("--help")).unwrap_err().to_string();
        assert!(help.contains("--control-fd"), "{help}");
        assert!(!help.contains("inject"), "{help}");
    }

    #[test]
    fn fs_shares_are_repeatable_and_validated() {
        let dir = std::env::temp_dir().join(format!("hull-cli-fs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        let config = parse(args(&format!(
            "--kernel k --fs rootfs={d} --fs=data={d}:ro"
        )))
        .unwrap()
        .config;
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
            assert_eq!(
                kind(&format!("--kernel k --fs {bad}")),
                ErrorKind::ValueValidation,
                "{bad}"
            );
        }
        assert_eq!(kind("--kernel k --fs"), ErrorKind::InvalidValue);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
