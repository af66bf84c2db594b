//! When a failed job runs again: exponential backoff with jitter, a cap on
//! attempts and on the job's age, and the plugin's own `retry-after` hint
//! (HTTP `Retry-After`, Bitrix24 `QUERY_LIMIT_EXCEEDED`) as a lower bound.

use super::Envelope;
use crate::config::RetryConfig;
use std::time::Duration;

/// The retry schedule of every job.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    attempts: u32,
    initial: Duration,
    max: Duration,
    multiplier: f64,
    jitter: f64,
    max_age: Duration,
}

impl RetryPolicy {
    pub fn new(config: &RetryConfig) -> Self {
        Self {
            attempts: config.attempts.max(1),
            initial: Duration::from_millis(config.initial_backoff_ms),
            max: Duration::from_millis(config.max_backoff_ms.max(config.initial_backoff_ms)),
            multiplier: config.multiplier.max(1.0),
            jitter: config.jitter.clamp(0.0, 1.0),
            max_age: Duration::from_secs(config.max_age_seconds),
        }
    }

    /// The delay after the `failed`-th attempt (1-based) failed: the
    /// backoff, jittered by ±`jitter`, but never shorter than the plugin's
    /// `hint` (nor longer than the hint when the hint exceeds the cap).
    pub fn delay(&self, failed: u32, hint: Option<Duration>) -> Duration {
        let exponent = i32::try_from(failed.saturating_sub(1)).unwrap_or(i32::MAX).min(64);
        let base = self.initial.as_secs_f64() * self.multiplier.powi(exponent);
        let base = base.min(self.max.as_secs_f64());
        let spread = 1.0 + self.jitter * (fastrand::f64() * 2.0 - 1.0);
        let backoff = Duration::from_secs_f64((base * spread).max(0.0));
        match hint {
            Some(hint) => backoff.max(hint),
            None => backoff,
        }
    }

    /// No retry follows the coming attempt of `envelope`: it is the last
    /// one allowed, or the job is too old to be worth answering later.
    pub fn is_last_attempt(&self, envelope: &Envelope, now_ms: u64) -> bool {
        let age = Duration::from_millis(now_ms.saturating_sub(envelope.created_ms));
        envelope.attempt + 1 >= self.attempts || age + self.delay_floor(envelope.attempt + 1) >= self.max_age
    }

    /// Whether the job would be past the maximum age at `at_ms`.
    pub fn is_too_old(&self, envelope: &Envelope, at_ms: u64) -> bool {
        Duration::from_millis(at_ms.saturating_sub(envelope.created_ms)) >= self.max_age
    }

    /// The smallest delay the next retry could get (jitter at its low end).
    fn delay_floor(&self, failed: u32) -> Duration {
        let exponent = i32::try_from(failed.saturating_sub(1)).unwrap_or(i32::MAX).min(64);
        let base = (self.initial.as_secs_f64() * self.multiplier.powi(exponent)).min(self.max.as_secs_f64());
        Duration::from_secs_f64(base * (1.0 - self.jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{AdminAction, Job};

    fn policy(attempts: u32, max_age_seconds: u64) -> RetryPolicy {
        RetryPolicy::new(&RetryConfig { attempts, initial_backoff_ms: 100, max_backoff_ms: 1_000, multiplier: 2.0, jitter: 0.2, max_age_seconds })
    }

    fn envelope(attempt: u32, created_ms: u64) -> Envelope {
        let job = Job::Admin { connector: "c".into(), conversation: "x".into(), action: AdminAction::Reset };
        Envelope { attempt, created_ms, ..Envelope::new("t", job) }
    }

    #[test]
    fn backoff_grows_exponentially_within_the_jitter_and_stops_at_the_cap() {
        let policy = policy(10, 3600);
        for _ in 0..200 {
            let first = policy.delay(1, None).as_secs_f64();
            assert!((0.08..=0.12).contains(&first), "first retry after {first}s");
            let third = policy.delay(3, None).as_secs_f64();
            assert!((0.32..=0.48).contains(&third), "third retry after {third}s");
            let late = policy.delay(30, None).as_secs_f64();
            assert!((0.8..=1.2).contains(&late), "capped retry after {late}s");
        }
    }

    #[test]
    fn a_retry_after_hint_is_a_lower_bound() {
        let policy = policy(10, 3600);
        assert!(policy.delay(1, Some(Duration::from_secs(5))) >= Duration::from_secs(5));
        assert!(policy.delay(8, Some(Duration::from_millis(1))) >= Duration::from_millis(800));
    }

    #[test]
    fn the_last_attempt_is_known_by_count_and_by_age() {
        let policy = policy(3, 60);
        let now = 1_000_000;
        assert!(!policy.is_last_attempt(&envelope(0, now), now));
        assert!(!policy.is_last_attempt(&envelope(1, now), now));
        assert!(policy.is_last_attempt(&envelope(2, now), now));
        assert!(policy.is_last_attempt(&envelope(0, now - 60_000), now), "too old to retry");
    }
}
