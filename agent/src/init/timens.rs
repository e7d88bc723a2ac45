//! The container's time namespace (`linux.timeOffsets`): the offsets of the
//! monotonic and boot-time clocks, written to `/proc/self/timens_offsets`
//! after `unshare(CLONE_NEWTIME)` and before the first process (the forked
//! child) enters the namespace.

use oci_spec::runtime::Linux;

use super::{InitError, Result};

/// The clocks a time namespace can offset, by their OCI key.
const CLOCKS: [&str; 2] = ["monotonic", "boottime"];

/// The text of `timens_offsets` for the spec's offsets; an unknown clock
/// is an error naming it.
pub fn offsets_text(linux: &Linux) -> Result<String> {
    let mut out = String::new();
    let mut offsets: Vec<_> = linux.time_offsets().iter().flatten().collect();
    offsets.sort_by(|a, b| a.0.cmp(b.0));
    for (clock, offset) in offsets {
        if !CLOCKS.contains(&clock.as_str()) {
            return Err(InitError::Msg(format!(
                "linux.timeOffsets: unknown clock {clock:?} (monotonic or boottime)"
            )));
        }
        let secs = offset.secs().unwrap_or(0);
        let nanos = offset.nanosecs().unwrap_or(0);
        if nanos >= 1_000_000_000 {
            return Err(InitError::Msg(format!(
                "linux.timeOffsets.{clock}.nanosecs {nanos} is not below one second"
            )));
        }
        out.push_str(&format!("{clock} {secs} {nanos}\n"));
    }
    Ok(out)
}

/// Writes the offsets (nothing when the spec has none).
pub fn write_offsets(linux: &Linux) -> Result<()> {
    let text = offsets_text(linux)?;
    if text.is_empty() {
        return Ok(());
    }
    // One line per write: the kernel parses one clock per write call.
    for line in text.lines() {
        std::fs::write("/proc/self/timens_offsets", format!("{line}\n"))
            .map_err(|e| InitError::os(format!("linux.timeOffsets ({line})"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_formatted_and_checked() {
        let linux: Linux = serde_json::from_str(
            r#"{"timeOffsets": {"monotonic": {"secs": 3600, "nanosecs": 5},
                                "boottime": {"secs": -7}}}"#,
        )
        .unwrap();
        assert_eq!(
            offsets_text(&linux).unwrap(),
            "boottime -7 0\nmonotonic 3600 5\n"
        );
        let bad: Linux =
            serde_json::from_str(r#"{"timeOffsets": {"realtime": {"secs": 1}}}"#).unwrap();
        assert!(offsets_text(&bad)
            .unwrap_err()
            .to_string()
            .contains("realtime"));
    }
}
