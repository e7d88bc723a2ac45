//! The `--log FILE` / `--log-format text|json` global options: errors are
//! appended to the file as well as printed on stderr, in the shape runc's
//! logrus writes them, so engines that read the last error from the log
//! (containerd, CRI-O) find it:
//!
//! ```text
//! {"level":"error","msg":"container does not exist","time":"2024-01-02T03:04:05Z"}
//! time="2024-01-02T03:04:05Z" level=error msg="container does not exist"
//! ```

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::SystemTime;

use crate::state::time::rfc3339_seconds;

/// How log lines look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid log-format: {0}")]
pub struct BadLogFormat(pub String);

impl FromStr for LogFormat {
    type Err = BadLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" | "" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(BadLogFormat(other.into())),
        }
    }
}

/// One log line (with its newline).
pub fn format_line(format: LogFormat, level: &str, msg: &str, time: SystemTime) -> String {
    let time = rfc3339_seconds(time);
    match format {
        LogFormat::Json => {
            // Keys in logrus's (sorted) order.
            let line = serde_json::json!({ "level": level, "msg": msg, "time": time });
            format!("{line}\n")
        }
        LogFormat::Text => {
            format!("time=\"{time}\" level={level} msg={}\n", quote(msg))
        }
    }
}

/// logrus quotes a text value unless it is made of "safe" characters only.
fn quote(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-._/@^+".contains(c);
    if !value.is_empty() && value.chars().all(safe) {
        return value.to_string();
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Where errors go besides stderr.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorLog {
    pub path: Option<PathBuf>,
    pub format: LogFormat,
}

impl ErrorLog {
    /// Appends an error line to the log file, if there is one.
    pub fn error(&self, msg: &str) -> io::Result<()> {
        self.write("error", msg)
    }

    /// Appends a `warning` line.
    pub fn warn(&self, msg: &str) -> io::Result<()> {
        self.write("warning", msg)
    }

    fn write(&self, level: &str, msg: &str) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let line = format_line(self.format, level, msg, SystemTime::now());
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)?;
        // One write, so concurrent writers' lines do not interleave.
        f.write_all(line.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::time::{Duration, UNIX_EPOCH};

    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn json_lines_like_logrus() {
        let line = format_line(LogFormat::Json, "error", "container does not exist", at());
        assert_eq!(
            line,
            "{\"level\":\"error\",\"msg\":\"container does not exist\",\"time\":\"2023-11-14T22:13:20Z\"}\n"
        );
    }

    #[test]
    fn text_lines_quote_when_needed() {
        let line = format_line(LogFormat::Text, "error", "say \"hi\"\n", at());
        assert_eq!(
            line,
            "time=\"2023-11-14T22:13:20Z\" level=error msg=\"say \\\"hi\\\"\\n\"\n"
        );
        assert!(format_line(LogFormat::Text, "error", "plain", at()).ends_with("msg=plain\n"));
    }

    #[test]
    fn formats_parse() {
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!("text".parse::<LogFormat>().unwrap(), LogFormat::Text);
        let e = "xml".parse::<LogFormat>().unwrap_err();
        assert_eq!(e.to_string(), "invalid log-format: xml");
    }

    #[test]
    fn errors_are_appended() {
        let dir = TempDir::new("errlog");
        let log = ErrorLog {
            path: Some(dir.path().join("log.json")),
            format: LogFormat::Json,
        };
        log.error("one").unwrap();
        log.error("two").unwrap();
        let text = std::fs::read_to_string(dir.path().join("log.json")).unwrap();
        let msgs: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["msg"].to_string())
            .collect();
        assert_eq!(msgs, ["\"one\"", "\"two\""]);
        ErrorLog::default().error("nowhere").unwrap();
    }
}
