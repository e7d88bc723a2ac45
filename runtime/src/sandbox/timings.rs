//! Phase timings of a run, printed by `hull run --timings` as one JSON line.

use std::time::{Duration, Instant};

/// Back-to-back phases: each mark ends the phase started by the previous one.
#[derive(Debug, Clone)]
pub struct Timings {
    start: Instant,
    last: Instant,
    phases: Vec<(&'static str, Duration)>,
}

impl Default for Timings {
    fn default() -> Self {
        Self::new()
    }
}

impl Timings {
    /// Starts the clock.
    pub fn new() -> Self {
        let now = Instant::now();
        Self {
            start: now,
            last: now,
            phases: Vec::new(),
        }
    }

    /// Ends phase `name` now.
    pub fn mark(&mut self, name: &'static str) {
        let now = Instant::now();
        self.phases.push((name, now - self.last));
        self.last = now;
    }

    /// Ends phase `name` at `at_ns` on CLOCK_MONOTONIC (a time another
    /// process reported, such as hull-vmm's agent-ready event). The time is
    /// kept between the previous mark and now, so a wrong report cannot
    /// make phases overlap or end in the future.
    pub fn mark_at(&mut self, name: &'static str, at_ns: u64) {
        let now = Instant::now();
        let ago = Duration::from_nanos(monotonic_ns().saturating_sub(at_ns));
        let at = now.checked_sub(ago).unwrap_or(self.last).max(self.last);
        self.phases.push((name, at - self.last));
        self.last = at;
    }

    /// The phase's duration, if it was marked.
    pub fn get(&self, name: &str) -> Option<Duration> {
        self.phases
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| *d)
    }

    /// `{"<phase>_ms": …, …, "total_ms": …}`, in milliseconds with
    /// microsecond precision, phases in order.
    pub fn to_json(&self) -> String {
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        let mut fields: Vec<String> = self
            .phases
            .iter()
            .map(|(name, d)| format!("\"{name}_ms\":{}", ms(*d)))
            .collect();
        fields.push(format!("\"total_ms\":{}", ms(self.last - self.start)));
        format!("{{{}}}", fields.join(","))
    }
}

pub use vmm_control::monotonic_ns;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_back_to_back_and_sum_to_the_total() {
        let mut t = Timings::new();
        t.mark("vm_boot");
        std::thread::sleep(Duration::from_millis(2));
        t.mark("teardown");
        assert!(t.get("teardown").unwrap() >= Duration::from_millis(2));
        let json: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
        let total = json["total_ms"].as_f64().unwrap();
        let sum = json["vm_boot_ms"].as_f64().unwrap() + json["teardown_ms"].as_f64().unwrap();
        assert!((total - sum).abs() < 0.01, "{json}");
        assert!(t.to_json().starts_with("{\"vm_boot_ms\":"));
    }

    #[test]
    fn marks_at_a_reported_time_stay_in_order() {
        let mut t = Timings::new();
        let before = monotonic_ns();
        std::thread::sleep(Duration::from_millis(5));
        t.mark_at("vm_boot", before + 2_000_000);
        let boot = t.get("vm_boot").unwrap();
        assert!(
            boot >= Duration::from_millis(1) && boot < Duration::from_millis(5),
            "{boot:?}"
        );
        // A time before the last mark or in the future is clamped.
        t.mark_at("early", 1);
        assert_eq!(t.get("early"), Some(Duration::ZERO));
        let last = t.last;
        t.mark_at("future", u64::MAX);
        assert!(
            t.last >= last && t.last <= Instant::now(),
            "kept at or before now"
        );
    }
}
