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
}
