//! The VM's console: every line `hull-vmm` prints (the guest console on its
//! stdout, its own messages on stderr) is appended to the console log and
//! kept in a short tail for error reports. The console is only a log:
//! readiness comes from hull-vmm's control channel, never from this text,
//! which the guest controls.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

/// Guest console lines kept for error reports.
const TAIL_LINES: usize = 20;
/// hull-vmm's own lines kept: the first ones (its error, before any usage
/// text) and the last ones.
const VMM_HEAD_LINES: usize = 3;
const VMM_TAIL_LINES: usize = 3;
/// Longest line kept for reports (the log has it whole).
const TAIL_LINE_CHARS: usize = 400;

/// Which of hull-vmm's outputs a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// stdout: the guest's serial console.
    Guest,
    /// stderr: hull-vmm's own messages.
    Vmm,
}

#[derive(Debug, Default)]
struct Inner {
    log: Option<File>,
    guest: VecDeque<String>,
    vmm_head: Vec<String>,
    vmm_tail: VecDeque<String>,
    vmm_skipped: usize,
}

/// Shared between the reader threads and the sandbox.
#[derive(Debug, Clone, Default)]
pub struct Console(Arc<Mutex<Inner>>);

/// Longest console line read at once.
const MAX_LINE: u64 = 64 * 1024;

fn keep_last(lines: &mut VecDeque<String>, max: usize, line: String) -> bool {
    let full = lines.len() == max;
    if full {
        lines.pop_front();
    }
    lines.push_back(line);
    full
}

impl Console {
    /// A console appending to `log` (none: keep only the tail).
    pub fn new(log: Option<File>) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            log,
            ..Inner::default()
        })))
    }

    fn push(&self, source: Source, line: &str) {
        let mut inner = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(log) = inner.log.as_mut() {
            // The log is best effort: a full disk must not stop the VM.
            let _ = writeln!(log, "{line}");
        }
        let short: String = line.chars().take(TAIL_LINE_CHARS).collect();
        match source {
            Source::Guest => {
                keep_last(&mut inner.guest, TAIL_LINES, short);
            }
            Source::Vmm if inner.vmm_head.len() < VMM_HEAD_LINES => inner.vmm_head.push(short),
            Source::Vmm => {
                if keep_last(&mut inner.vmm_tail, VMM_TAIL_LINES, short) {
                    inner.vmm_skipped += 1;
                }
            }
        }
    }

    /// What hull-vmm said and the console's last lines, indented, for an
    /// error message.
    pub fn tail(&self) -> String {
        let inner = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        if !inner.vmm_head.is_empty() {
            out.push("hull-vmm said:".to_string());
            out.extend(inner.vmm_head.iter().map(|l| format!("  ! {l}")));
            if inner.vmm_skipped > 0 {
                out.push(format!("  ! [… {} lines …]", inner.vmm_skipped));
            }
            out.extend(inner.vmm_tail.iter().map(|l| format!("  ! {l}")));
        }
        if inner.guest.is_empty() {
            out.push("(the VM printed nothing on its console)".into());
        } else {
            out.push("last console lines:".into());
            out.extend(inner.guest.iter().map(|l| format!("  | {l}")));
        }
        out.join("\n")
    }

    /// Reads `src` line by line until it ends, recording each line.
    pub fn read_lines(&self, source: Source, src: impl Read) {
        let mut reader = BufReader::new(src);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            // A guest that never sends a newline gets its output cut into
            // lines of MAX_LINE bytes, not an ever-growing buffer.
            match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&buf);
            let line = text.trim_end_matches(['\n', '\r']);
            self.push(source, line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn lines_are_logged_and_tailed() {
        let dir = TempDir::new("console");
        let path = dir.path().join("console.log");
        let console = Console::new(Some(File::create(&path).unwrap()));
        let mut text = String::from("[    0.1] Linux version\r\n");
        text +=
            "hull-agent: ready boottime_us=5 cpus=1 mem_total_kib=9 virtio=19,26 hwrng_bytes=0\n";
        text += "hull-agent: ready again\n";
        for i in 0..30 {
            text += &format!("line {i}\n");
        }
        text += "no newline at the end";
        console.read_lines(Source::Guest, text.as_bytes());
        let tail = console.tail();
        assert!(
            tail.starts_with("last console lines:\n  | line 11\n"),
            "{tail}"
        );
        assert!(
            tail.ends_with("  | line 29\n  | no newline at the end"),
            "{tail}"
        );
        let log = std::fs::read_to_string(&path).unwrap();
        assert!(log.starts_with("[    0.1] Linux version\nhull-agent: ready boot"));
        assert_eq!(log.lines().count(), 34);
    }

    #[test]
    fn the_vmms_first_and_last_lines_come_first() {
        let console = Console::default();
        console.read_lines(Source::Guest, &b"booting\n"[..]);
        let vmm: String = (0..10).map(|i| format!("vmm {i}\n")).collect();
        console.read_lines(Source::Vmm, vmm.as_bytes());
        assert_eq!(
            console.tail(),
            "hull-vmm said:\n  ! vmm 0\n  ! vmm 1\n  ! vmm 2\n  ! [… 4 lines …]\n  \
             ! vmm 7\n  ! vmm 8\n  ! vmm 9\nlast console lines:\n  | booting"
        );
    }

    #[test]
    fn an_empty_console_is_named() {
        assert_eq!(
            Console::default().tail(),
            "(the VM printed nothing on its console)"
        );
    }

    #[test]
    fn a_line_without_end_is_cut_not_grown() {
        let console = Console::new(None);
        let long = vec![b'x'; 3 * MAX_LINE as usize + 10];
        console.read_lines(Source::Guest, &long[..]);
        let tail = console.tail();
        assert!(tail.lines().count() >= 4, "{}", tail.lines().count());
    }
}
