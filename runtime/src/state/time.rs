//! RFC 3339 timestamps in UTC, as Go prints them (runc's `created` uses
//! `RFC3339Nano`: trailing zeros of the fraction dropped, no fraction at all
//! on a whole second).

use std::time::{SystemTime, UNIX_EPOCH};

/// `2006-01-02T15:04:05.999999999Z` (trailing zeros trimmed).
pub fn rfc3339_nanos(t: SystemTime) -> String {
    let (secs, nanos) = split(t);
    let mut out = rfc3339_seconds_of(secs);
    out.pop(); // the 'Z'
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// `2006-01-02T15:04:05Z`.
pub fn rfc3339_seconds(t: SystemTime) -> String {
    rfc3339_seconds_of(split(t).0)
}

/// Seconds and nanoseconds since the epoch (times before it are clamped).
fn split(t: SystemTime) -> (u64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs(), d.subsec_nanos())
}

fn rfc3339_seconds_of(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01: count in 400-year
/// eras of 146097 days, with years starting on 1 March so the leap day is
/// the last day of a year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    const DAYS_PER_ERA: u64 = 146_097;
    // 1970-01-01 is day 719468 counted from 0000-03-01.
    let z = days + 719_468;
    let era = z / DAYS_PER_ERA;
    let day_of_era = z % DAYS_PER_ERA;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153; // month from March = 0
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339_nanos(at(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_seconds(at(951_782_400, 5)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_nanos(at(951_868_799, 0)), "2000-02-29T23:59:59Z");
        assert_eq!(
            rfc3339_nanos(at(1_700_000_000, 120_000_000)),
            "2023-11-14T22:13:20.12Z"
        );
        assert_eq!(
            rfc3339_nanos(at(4_102_444_800, 1)),
            "2100-01-01T00:00:00.000000001Z"
        );
        assert_eq!(rfc3339_nanos(at(1_709_251_199, 0)), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339_nanos(at(1_709_251_200, 0)), "2024-03-01T00:00:00Z");
    }
}
