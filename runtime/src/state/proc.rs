//! What `/proc/<pid>/stat` says about a sandbox process: whether it still
//! runs, and its start time (clock ticks after boot), which tells a reused
//! pid from the process that was recorded.

use std::io;

/// A process as seen in `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// The one-letter state (`R`, `S`, `Z`, …).
    pub state: char,
    /// Field 22: start time in clock ticks after boot.
    pub start_time: u64,
}

impl ProcStat {
    /// Reads `/proc/<pid>/stat`; `Ok(None)` when there is no such process.
    pub fn read(pid: i32) -> io::Result<Option<Self>> {
        if pid <= 0 {
            return Ok(None);
        }
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(text) => Self::parse(&text)
                .map(Some)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed stat")),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Parses the contents of a stat file. The command name (field 2) is in
    /// parentheses and may hold spaces and parentheses itself, so the fields
    /// are counted from the last `)`.
    pub fn parse(text: &str) -> Option<Self> {
        let after = &text[text.rfind(')')? + 1..];
        let mut fields = after.split_ascii_whitespace();
        let state = fields.next()?.chars().next()?;
        // Fields 4..=21 come before the start time.
        let start_time = fields.nth(18)?.parse().ok()?;
        Some(Self { state, start_time })
    }

    /// Exited (a zombie waits only for its parent to reap it).
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Whether `pid` is the live process that started at `start_time`.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    match ProcStat::read(pid) {
        Ok(Some(stat)) => !stat.is_dead() && stat.start_time == start_time,
        Ok(None) => false,
        // Unreadable but present (e.g. hidepid): believe the record.
        Err(_) => std::path::Path::new(&format!("/proc/{pid}")).exists(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_odd_command_names() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        let stat = ProcStat::parse(line).unwrap();
        assert_eq!(
            stat,
            ProcStat {
                state: 'S',
                start_time: 98765
            }
        );
        assert!(ProcStat::parse("42 (x) S 1 2").is_none());
        assert!(ProcStat::parse("garbage").is_none());
        assert!(ProcStat {
            state: 'Z',
            start_time: 1
        }
        .is_dead());
    }

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not() {
        let me = std::process::id() as i32;
        let stat = ProcStat::read(me).unwrap().unwrap();
        assert!(is_alive(me, stat.start_time));
        assert!(!is_alive(me, stat.start_time + 1));
        assert!(!is_alive(0, 0));
        assert!(ProcStat::read(-1).unwrap().is_none());
    }

    #[test]
    fn an_exited_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let start = ProcStat::read(pid).unwrap().map(|s| s.start_time);
        child.wait().unwrap();
        assert!(!is_alive(pid, start.unwrap_or(0)));
    }
}
