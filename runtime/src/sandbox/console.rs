//! The VM's console: every line `hull-vmm` prints (the guest console on its
//! stdout, its own messages on stderr) is appended to the console log and
//! kept in a short tail for error reports. The stdout reader also spots the
//! agent's ready line.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

use agent_protocol::{parse_ready_line, Ready, READY_LINE_PREFIX};

/// Lines kept for error reports.
const TAIL_LINES: usize = 20;
/// Longest line kept in the tail (the log has it whole).
const TAIL_LINE_CHARS: usize = 400;

#[derive(Debug, Default)]
struct Inner {
    log: Option<File>,
    tail: VecDeque<String>,
}

/// Shared between the reader threads and the sandbox.
#[derive(Debug, Clone, Default)]
pub struct Console(Arc<Mutex<Inner>>);

impl Console {
    /// A console appending to `log` (none: keep only the tail).
    pub fn new(log: Option<File>) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            log,
            tail: VecDeque::new(),
        })))
    }

    fn push(&self, line: &str) {
        let mut inner = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(log) = inner.log.as_mut() {
            // The log is best effort: a full disk must not stop the VM.
            let _ = writeln!(log, "{line}");
        }
        if inner.tail.len() == TAIL_LINES {
            inner.tail.pop_front();
        }
        inner
            .tail
            .push_back(line.chars().take(TAIL_LINE_CHARS).collect());
    }

    /// The last lines, indented, for an error message.
    pub fn tail(&self) -> String {
        let inner = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if inner.tail.is_empty() {
            return "(the VM printed nothing on its console)".into();
        }
        let mut out = String::from("last console lines:");
        for line in &inner.tail {
            out.push_str("\n  | ");
            out.push_str(line);
        }
        out
    }

    /// Reads `src` line by line until it ends, recording each line. The
    /// first ready line is announced to `on_ready` (with its parsed report,
    /// `None` if malformed).
    pub fn read_lines(&self, src: impl Read, on_ready: impl FnOnce(Option<Ready>)) {
        let mut on_ready = Some(on_ready);
        let mut reader = BufReader::new(src);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&buf);
            let line = text.trim_end_matches(['\n', '\r']);
            self.push(line);
            if line.starts_with(READY_LINE_PREFIX) {
                if let Some(f) = on_ready.take() {
                    f(parse_ready_line(line));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn lines_are_logged_tailed_and_the_ready_line_announced() {
        let dir = TempDir::new("console");
        let path = dir.path().join("console.log");
        let console = Console::new(Some(File::create(&path).unwrap()));
        let (tx, rx) = mpsc::channel();
        let mut text = String::from("[    0.1] Linux version\r\n");
        text +=
            "hull-agent: ready boottime_us=5 cpus=1 mem_total_kib=9 virtio=19,26 hwrng_bytes=0\n";
        text += "hull-agent: ready again\n";
        for i in 0..30 {
            text += &format!("line {i}\n");
        }
        text += "no newline at the end";
        console.read_lines(text.as_bytes(), move |r| tx.send(r).unwrap());
        let ready = rx.recv().unwrap().unwrap();
        assert_eq!((ready.boottime_us, ready.virtio), (5, vec![19, 26]));
        assert!(rx.recv().is_err(), "announced once");
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
    fn a_malformed_ready_line_still_means_ready() {
        let console = Console::new(None);
        let (tx, rx) = mpsc::channel();
        console.read_lines(&b"hull-agent: ready soon\n"[..], |r| tx.send(r).unwrap());
        assert_eq!(rx.recv().unwrap(), None);
        assert_eq!(
            Console::default().tail(),
            "(the VM printed nothing on its console)"
        );
    }
}
