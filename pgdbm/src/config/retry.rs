//! The connect retry policy ([`RetryPolicy`]): exponential backoff, capped.

use std::time::Duration;

/// Connect retry with exponential backoff.
///
/// The default is 3 attempts, 1 s before the second one, doubling, at most 30 s.
///
/// ```
/// use std::time::Duration;
/// use pgdbm::RetryPolicy;
///
/// let retry = RetryPolicy::default();
/// assert_eq!(retry.delay_after(1), Duration::from_secs(1));
/// assert_eq!(retry.delay_after(2), Duration::from_secs(2));
/// assert_eq!(retry.delay_after(10), Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Total attempts (1 = no retry). Must be at least 1.
    pub attempts: u32,
    /// Delay before the second attempt.
    pub initial_delay: Duration,
    /// Multiplier applied to the delay after each attempt. Must be finite and at least 1.0.
    pub backoff: f64,
    /// Upper bound of a delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            initial_delay: Duration::from_secs(1),
            backoff: 2.0,
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy with the given values; they are validated when the config is built.
    pub fn new(attempts: u32, initial_delay: Duration, backoff: f64, max_delay: Duration) -> Self {
        RetryPolicy {
            attempts,
            initial_delay,
            backoff,
            max_delay,
        }
    }

    /// A single attempt, no retry.
    pub fn no_retry() -> Self {
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay after failed attempt number `attempt` (1-based):
    /// `initial_delay × backoff^(attempt − 1)`, capped at `max_delay`.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let secs = self.initial_delay.as_secs_f64() * self.backoff.powi(exponent);
        // Also catches NaN and infinity, so `from_secs_f64` cannot panic.
        if secs < self.max_delay.as_secs_f64() && secs >= 0.0 {
            Duration::from_secs_f64(secs)
        } else {
            self.max_delay
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays() {
        let r = RetryPolicy::default();
        assert_eq!(r.delay_after(0), Duration::from_secs(1));
        assert_eq!(r.delay_after(1), Duration::from_secs(1));
        assert_eq!(r.delay_after(3), Duration::from_secs(4));
        assert_eq!(r.delay_after(6), Duration::from_secs(30));
        assert_eq!(r.delay_after(u32::MAX), Duration::from_secs(30));
        // Extreme values saturate instead of panicking.
        let r = RetryPolicy::new(3, Duration::MAX, 1e300, Duration::from_secs(7));
        assert_eq!(r.delay_after(64), Duration::from_secs(7));
        let r = RetryPolicy::new(3, Duration::from_secs(1), f64::NAN, Duration::from_secs(7));
        assert_eq!(r.delay_after(2), Duration::from_secs(7));
        assert_eq!(RetryPolicy::no_retry().attempts, 1);
    }
}
