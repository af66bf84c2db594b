//! Outbound rate limits: a leaky bucket per destination (`host:port`) for
//! each connector side that sets `rate_limit_per_second` (and optionally
//! `rate_limit_burst`), e.g. Bitrix24's 2 requests/s with a burst of 50 per
//! portal.
//!
//! The bucket is the GCRA form of a leaky bucket: each admitted request
//! moves the bucket's theoretical arrival time (`tat`) one interval on. A
//! request that fits waits inside the call for its slot when the slot is
//! near; one whose slot is further away is *deferred*: the call is stopped
//! before anything was sent and the job is rescheduled for that slot
//! without spending a retry attempt. Deferred slots are handed out one
//! interval apart, so deferred jobs come back at the bucket's pace instead
//! of all at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a request waits inside a plugin call for its slot (also
/// capped at a quarter of the call's deadline); later slots are deferred.
pub const MAX_WAIT_IN_CALL: Duration = Duration::from_secs(1);

/// Buckets kept before idle ones are dropped.
const MAX_BUCKETS: usize = 10_000;

/// Requests per second and burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

impl RateLimit {
    /// Read `rate_limit_per_second` and `rate_limit_burst` (default 1) from
    /// a plugin's settings; `None` when no limit is set.
    pub fn from_settings(settings: &BTreeMap<String, String>) -> Result<Option<RateLimit>, String> {
        let Some(rate) = settings.get("rate_limit_per_second") else {
            return match settings.contains_key("rate_limit_burst") {
                true => Err("`rate_limit_burst` needs `rate_limit_per_second`".into()),
                false => Ok(None),
            };
        };
        let per_second: f64 = rate.trim().parse().map_err(|_| format!("`rate_limit_per_second` must be a number, got `{rate}`"))?;
        if !(per_second.is_finite() && per_second > 0.0) {
            return Err(format!("`rate_limit_per_second` must be above 0, got `{rate}`"));
        }
        let burst = match settings.get("rate_limit_burst") {
            None => 1,
            Some(burst) => {
                burst.trim().parse::<u32>().ok().filter(|b| *b >= 1).ok_or_else(|| format!("`rate_limit_burst` must be a whole number ≥ 1, got `{burst}`"))?
            }
        };
        Ok(Some(RateLimit { per_second, burst }))
    }

    fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.per_second)
    }
}

/// What a request may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send after waiting this long (zero: at once).
    Wait(Duration),
    /// Do not send; try again after this long.
    Defer(Duration),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// When the bucket is empty again if nothing more is admitted.
    tat: Instant,
    /// The last slot handed to a deferred request.
    deferred: Instant,
}

/// The buckets of one connector side, by destination.
#[derive(Debug)]
pub struct OutboundLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl OutboundLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self { limit, buckets: Mutex::new(HashMap::new()) }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Admit one request to `destination` at `now`, waiting at most `max_wait`
    /// for its slot. `must_send` (a call that already sent a request, which
    /// cannot be repeated safely) always waits.
    pub fn admit(&self, destination: &str, now: Instant, max_wait: Duration, must_send: bool) -> Admission {
        let interval = self.limit.interval();
        // A full bucket holds `burst` requests: the next may start once the
        // level has drained below that.
        let tolerance = interval * self.limit.burst;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, bucket| bucket.tat > now || bucket.deferred > now);
        }
        let bucket = buckets.entry(destination.to_string()).or_insert(Bucket { tat: now, deferred: now });
        let next_tat = bucket.tat.max(now) + interval;
        let allowed_at = next_tat.checked_sub(tolerance).unwrap_or(now).max(now);
        let wait = allowed_at - now;
        if wait <= max_wait || must_send {
            bucket.tat = next_tat;
            return Admission::Wait(wait);
        }
        let slot = bucket.deferred.max(allowed_at) + interval;
        bucket.deferred = slot;
        Admission::Defer(slot - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: u32) -> OutboundLimiter {
        OutboundLimiter::new(RateLimit { per_second, burst })
    }

    #[test]
    fn a_burst_goes_at_once_then_one_request_per_interval() {
        let limiter = limiter(2.0, 50);
        let now = Instant::now();
        for _ in 0..50 {
            assert_eq!(limiter.admit("p.bitrix24.com:443", now, Duration::ZERO, false), Admission::Wait(Duration::ZERO));
        }
        assert_eq!(limiter.admit("p.bitrix24.com:443", now, Duration::from_secs(1), false), Admission::Wait(Duration::from_millis(500)));
        assert_eq!(limiter.admit("p.bitrix24.com:443", now, Duration::from_secs(1), false), Admission::Wait(Duration::from_millis(1000)));
        // The bucket drains: after 10 s twenty more fit.
        let later = now + Duration::from_secs(11);
        for _ in 0..20 {
            assert_eq!(limiter.admit("p.bitrix24.com:443", later, Duration::ZERO, false), Admission::Wait(Duration::ZERO));
        }
        assert!(matches!(limiter.admit("p.bitrix24.com:443", later, Duration::ZERO, false), Admission::Defer(_)));
    }

    #[test]
    fn destinations_have_their_own_buckets() {
        let limiter = limiter(1.0, 1);
        let now = Instant::now();
        assert_eq!(limiter.admit("a.example:443", now, Duration::ZERO, false), Admission::Wait(Duration::ZERO));
        assert_eq!(limiter.admit("b.example:443", now, Duration::ZERO, false), Admission::Wait(Duration::ZERO));
        assert!(matches!(limiter.admit("a.example:443", now, Duration::ZERO, false), Admission::Defer(_)));
    }

    #[test]
    fn deferred_requests_get_slots_one_interval_apart() {
        let limiter = limiter(2.0, 1);
        let now = Instant::now();
        limiter.admit("p:443", now, Duration::ZERO, false);
        let slots: Vec<Admission> = (0..3).map(|_| limiter.admit("p:443", now, Duration::ZERO, false)).collect();
        let ms = |d: u64| Admission::Defer(Duration::from_millis(d));
        assert_eq!(slots, vec![ms(1000), ms(1500), ms(2000)]);
    }

    #[test]
    fn a_call_that_already_sent_waits_instead_of_deferring() {
        let limiter = limiter(1.0, 1);
        let now = Instant::now();
        limiter.admit("p:443", now, Duration::ZERO, false);
        assert_eq!(limiter.admit("p:443", now, Duration::ZERO, true), Admission::Wait(Duration::from_secs(1)));
    }

    #[test]
    fn settings_are_validated() {
        let settings = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>();
        assert_eq!(RateLimit::from_settings(&settings(&[])), Ok(None));
        assert_eq!(
            RateLimit::from_settings(&settings(&[("rate_limit_per_second", "2"), ("rate_limit_burst", "50")])),
            Ok(Some(RateLimit { per_second: 2.0, burst: 50 }))
        );
        assert_eq!(RateLimit::from_settings(&settings(&[("rate_limit_per_second", "0.5")])), Ok(Some(RateLimit { per_second: 0.5, burst: 1 })));
        assert!(RateLimit::from_settings(&settings(&[("rate_limit_per_second", "fast")])).unwrap_err().contains("must be a number"));
        assert!(RateLimit::from_settings(&settings(&[("rate_limit_per_second", "0")])).unwrap_err().contains("above 0"));
        assert!(RateLimit::from_settings(&settings(&[("rate_limit_per_second", "2"), ("rate_limit_burst", "0")])).unwrap_err().contains("≥ 1"));
        assert!(RateLimit::from_settings(&settings(&[("rate_limit_burst", "5")])).unwrap_err().contains("needs"));
    }
}
