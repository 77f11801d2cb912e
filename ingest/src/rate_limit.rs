//! In-memory token-bucket rate limits, one set per ingest process (several ingest replicas each
//! apply their own budget; a shared store would be needed for a global one).
//!
//! Three limits (docs/security.md#rate-limits): failed authentications per source address, webhook
//! requests per token, and new signals per owner. Each bucket holds `per_minute` units and refills
//! continuously, so a burst up to the budget passes and the long-run rate is the budget per minute.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use humbex_shared::config::RateLimits;
use uuid::Uuid;

/// Above this many tracked keys, full (idle) buckets are dropped, bounding memory under a flood of
/// distinct keys: a full bucket carries no information.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    units: f64,
    updated: Instant,
}

/// One limit: `per_minute` units per key.
pub struct Limiter<K> {
    per_minute: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash + Clone> Limiter<K> {
    pub fn new(per_minute: u32) -> Self {
        Limiter {
            per_minute: f64::from(per_minute.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn refilled(&self, bucket: Option<&Bucket>, now: Instant) -> Bucket {
        match bucket {
            None => Bucket {
                units: self.per_minute,
                updated: now,
            },
            Some(b) => {
                let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
                Bucket {
                    units: (b.units + elapsed * self.per_minute / 60.0).min(self.per_minute),
                    updated: now,
                }
            }
        }
    }

    /// How long until one unit is available (whole seconds, at least 1).
    fn wait(&self, units: f64) -> Duration {
        let seconds = ((1.0 - units) * 60.0 / self.per_minute).ceil().max(1.0);
        Duration::from_secs(seconds as u64)
    }

    /// Take one unit for `key`, or say how long to wait.
    pub fn take(&self, key: &K) -> Result<(), Duration> {
        self.take_at(key, Instant::now())
    }

    pub fn take_at(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        let mut bucket = self.refilled(buckets.get(key), now);
        let answer = if bucket.units >= 1.0 {
            bucket.units -= 1.0;
            Ok(())
        } else {
            Err(self.wait(bucket.units))
        };
        if buckets.len() >= PRUNE_ABOVE && !buckets.contains_key(key) {
            let per_minute = self.per_minute;
            buckets.retain(|_, b| {
                let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
                b.units + elapsed * per_minute / 60.0 < per_minute
            });
        }
        buckets.insert(key.clone(), bucket);
        answer
    }

    /// Whether `key` has no unit left, without taking one.
    pub fn exhausted(&self, key: &K) -> Option<Duration> {
        self.exhausted_at(key, Instant::now())
    }

    pub fn exhausted_at(&self, key: &K, now: Instant) -> Option<Duration> {
        let buckets = self.buckets.lock().expect("rate limiter lock");
        let bucket = self.refilled(buckets.get(key), now);
        (bucket.units < 1.0).then(|| self.wait(bucket.units))
    }
}

/// The three limits of one ingest process.
pub struct RateLimiters {
    /// Keyed by source address; fed by every 401 answer, checked before any route runs.
    pub auth_failures: Limiter<IpAddr>,
    /// Keyed by the SHA-256 digest of a well-formed webhook token, before any database query.
    pub token_requests: Limiter<[u8; 32]>,
    /// Keyed by the owner (user or strategy id) of accepted signals.
    pub owner_signals: Limiter<Uuid>,
    /// Token digest → owner, learned from stored signals, so the owner's budget is checked before
    /// the next signal is stored (and survives a token rotation once the new token is used).
    owners: Mutex<HashMap<[u8; 32], Uuid>>,
}

impl RateLimiters {
    pub fn new(limits: RateLimits) -> Self {
        RateLimiters {
            auth_failures: Limiter::new(limits.auth_failures_per_ip),
            token_requests: Limiter::new(limits.requests_per_token),
            owner_signals: Limiter::new(limits.signals_per_owner),
            owners: Mutex::new(HashMap::new()),
        }
    }

    /// The owner last seen for a token digest.
    pub fn owner_of(&self, digest: &[u8; 32]) -> Option<Uuid> {
        self.owners.lock().expect("owners lock").get(digest).copied()
    }

    pub fn remember_owner(&self, digest: [u8; 32], owner: Uuid) {
        let mut owners = self.owners.lock().expect("owners lock");
        if owners.len() >= PRUNE_ABOVE && !owners.contains_key(&digest) {
            // Only a cache: forgetting costs one signal outside the budget, never a wrong answer.
            owners.clear();
        }
        owners.insert(digest, owner);
    }
}

/// The text of a Retry-After header for `wait`.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_then_refusal_then_refill() {
        let limiter = Limiter::<u8>::new(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take_at(&1, t0).is_ok());
        }
        let wait = limiter.take_at(&1, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(20), "one unit per 20 s at 3/min");
        assert!(limiter.exhausted_at(&1, t0).is_some());
        // Another key has its own budget.
        assert!(limiter.take_at(&2, t0).is_ok());
        // After 20 s one unit is back.
        let later = t0 + Duration::from_secs(20);
        assert!(limiter.exhausted_at(&1, later).is_none());
        assert!(limiter.take_at(&1, later).is_ok());
        assert!(limiter.take_at(&1, later).is_err());
    }

    #[test]
    fn idle_buckets_are_pruned() {
        let limiter = Limiter::<u32>::new(1);
        let t0 = Instant::now();
        for k in 0..PRUNE_ABOVE as u32 {
            let _ = limiter.take_at(&k, t0);
        }
        let later = t0 + Duration::from_secs(120);
        let _ = limiter.take_at(&u32::MAX, later);
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
    }
}
