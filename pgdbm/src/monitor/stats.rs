//! Per-statement aggregates: counts, totals, max, and percentiles from a bounded reservoir.

use std::sync::Arc;
use std::time::Duration;

/// Durations kept per statement for percentiles (a uniform sample of all calls, Algorithm R).
pub(crate) const RESERVOIR: usize = 256;

/// Aggregates of one statement text, from [`Monitor::statements`](super::Monitor::statements).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StatementStats {
    /// The SQL as written, before template expansion: the key. Handles on different schemas
    /// running the same template text share one aggregate.
    pub sql: Arc<str>,
    /// Calls.
    pub count: u64,
    /// Failed calls.
    pub errors: u64,
    /// Summed duration.
    pub total: Duration,
    /// `total / count`.
    pub mean: Duration,
    /// Median, estimated from a uniform sample of up to 256 calls.
    pub p50: Duration,
    /// 95th percentile, estimated like `p50`.
    pub p95: Duration,
    /// Longest call (exact).
    pub max: Duration,
}

#[derive(Debug, Default)]
pub(crate) struct Aggregate {
    count: u64,
    errors: u64,
    total: Duration,
    max: Duration,
    sample: Vec<Duration>,
}

impl Aggregate {
    /// Adds one call; `rng` is a fresh pseudo-random number for the reservoir.
    pub(crate) fn add(&mut self, d: Duration, failed: bool, rng: u64) {
        self.count += 1;
        self.errors += u64::from(failed);
        self.total += d;
        self.max = self.max.max(d);
        if self.sample.len() < RESERVOIR {
            self.sample.push(d);
        } else {
            // Keep each of the `count` calls with probability RESERVOIR / count.
            let slot = rng % self.count;
            if let Ok(slot) = usize::try_from(slot) {
                if slot < RESERVOIR {
                    self.sample[slot] = d;
                }
            }
        }
    }

    pub(crate) fn snapshot(&self, sql: Arc<str>) -> StatementStats {
        let mut sorted = self.sample.clone();
        sorted.sort_unstable();
        let mean = if self.count == 0 {
            Duration::ZERO
        } else {
            self.total / u32::try_from(self.count).unwrap_or(u32::MAX)
        };
        StatementStats {
            sql,
            count: self.count,
            errors: self.errors,
            total: self.total,
            mean: if self.count > u64::from(u32::MAX) {
                Duration::from_secs_f64(self.total.as_secs_f64() / self.count as f64)
            } else {
                mean
            },
            p50: percentile(&sorted, 0.50),
            p95: percentile(&sorted, 0.95),
            max: self.max,
        }
    }
}

/// Nearest-rank percentile of sorted durations.
pub(crate) fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_mean() {
        let mut agg = Aggregate::default();
        for ms in 1..=100u64 {
            agg.add(Duration::from_millis(ms), ms % 10 == 0, ms * 7919);
        }
        let s = agg.snapshot(Arc::from("q"));
        assert_eq!(s.count, 100);
        assert_eq!(s.errors, 10);
        assert_eq!(s.p50, Duration::from_millis(50));
        assert_eq!(s.p95, Duration::from_millis(95));
        assert_eq!(s.max, Duration::from_millis(100));
        assert_eq!(s.mean, Duration::from_micros(50_500));
    }

    #[test]
    fn reservoir_is_bounded() {
        let mut agg = Aggregate::default();
        let mut x = 1u64;
        for i in 0..10_000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            agg.add(Duration::from_micros(i), false, x >> 11);
        }
        assert_eq!(agg.sample.len(), RESERVOIR);
        let s = agg.snapshot(Arc::from("q"));
        // A uniform sample of 0..10000 µs: the median is near 5 ms.
        assert!(
            s.p50 > Duration::from_millis(3) && s.p50 < Duration::from_millis(7),
            "{s:?}"
        );
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
