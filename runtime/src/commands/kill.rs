//! `hull kill [--all] ID [SIGNAL]`: signals the container's init (or, with
//! `--all`, every process of the container). SIGNAL is a name (`KILL`,
//! `SIGKILL`) or a number; the default is SIGTERM.

use anyhow::bail;

use crate::Global;

/// `kill [--all|-a] ID [SIGNAL]` (runc's; liboci-cli's makes SIGNAL
/// required).
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// Container identifier
    #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub container_id: String,
    /// Signal to send: a name (KILL, SIGKILL, RTMIN+1) or number (default SIGTERM)
    pub signal: Option<String>,
    /// Send the signal to every process of the container
    #[arg(short, long)]
    pub all: bool,
}

const NAMES: [(&str, i32); 31] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
];

/// A signal by name (with or without `SIG`, any case), number, or
/// `RTMIN+N`/`RTMAX-N`.
pub fn parse_signal(s: &str) -> anyhow::Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal: {s}");
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = NAMES.iter().find(|(k, _)| *k == name) {
        return Ok(n);
    }
    let (rtmin, rtmax) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    let rt = if let Some(off) = name.strip_prefix("RTMIN") {
        off.strip_prefix('+')
            .map_or(if off.is_empty() { Some(rtmin) } else { None }, |n| {
                n.parse::<i32>().ok().map(|n| rtmin + n)
            })
    } else if let Some(off) = name.strip_prefix("RTMAX") {
        off.strip_prefix('-')
            .map_or(if off.is_empty() { Some(rtmax) } else { None }, |n| {
                n.parse::<i32>().ok().map(|n| rtmax - n)
            })
    } else {
        None
    };
    match rt {
        Some(n) if (rtmin..=rtmax).contains(&n) => Ok(n),
        _ => bail!("unknown signal {s:?}"),
    }
}

pub fn main(global: &Global, args: &Args) -> anyhow::Result<i32> {
    let id = &args.container_id;
    let signal = match &args.signal {
        Some(sig) => parse_signal(sig)?,
        None => libc::SIGTERM,
    };
    super::container::load(global, id)?.kill(signal, args.all)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_and_numbers() {
        for (s, n) in [
            ("9", 9),
            ("KILL", 9),
            ("SIGKILL", 9),
            ("term", 15),
            ("SIGUSR1", libc::SIGUSR1),
            ("WINCH", libc::SIGWINCH),
            ("RTMIN", libc::SIGRTMIN()),
            ("SIGRTMIN+2", libc::SIGRTMIN() + 2),
            ("RTMAX-1", libc::SIGRTMAX() - 1),
        ] {
            assert_eq!(parse_signal(s).unwrap(), n, "{s}");
        }
        for bad in ["0", "65", "-1", "SIGFOO", "RTMIN+99", "", "RTMINX"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }
}
