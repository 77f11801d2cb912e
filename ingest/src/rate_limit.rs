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

/// The limits of one ingest process.
pub struct RateLimiters {
    /// Keyed by source address (an IPv6 source by its /64, which one host usually holds whole);
    /// fed by every 401 answer, checked before any route runs.
    auth_failures: Limiter<IpAddr>,
    /// One budget for every source: lookups of well-formed tokens that no one holds, so random
    /// tokens from many addresses cannot keep the database busy. Tokens already seen to belong to
    /// an owner skip it, so a flood of guesses does not stop known users.
    unknown_tokens: Limiter<()>,
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
            unknown_tokens: Limiter::new(limits.unknown_tokens),
            token_requests: Limiter::new(limits.requests_per_token),
            owner_signals: Limiter::new(limits.signals_per_owner),
            owners: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `source` has no failed authentication left, and for how long.
    pub fn auth_failures_exhausted(&self, source: IpAddr) -> Option<Duration> {
        self.auth_failures.exhausted(&source_key(source))
    }

    /// Charge a 401 to `source`.
    pub fn auth_failed(&self, source: IpAddr) {
        let _ = self.auth_failures.take(&source_key(source));
    }

    /// Whether a lookup of a token no owner is known for may run now.
    pub fn unknown_tokens_exhausted(&self) -> Option<Duration> {
        self.unknown_tokens.exhausted(&())
    }

    /// Charge a lookup that found no owner.
    pub fn unknown_token_looked_up(&self) {
        let _ = self.unknown_tokens.take(&());
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

/// The key a source address is limited under: an IPv6 address by its /64 (a host usually gets a
/// whole /64 and can pick any address in it), an IPv4 address by itself.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
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
    fn ipv6_sources_share_the_budget_of_their_64() {
        let limits = RateLimiters::new(RateLimits {
            auth_failures_per_ip: 2,
            ..RateLimits::default()
        });
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        limits.auth_failed(ip("2001:db8:1:2::1"));
        limits.auth_failed(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        // Another address of the same /64 has nothing left.
        assert!(limits.auth_failures_exhausted(ip("2001:db8:1:2::9")).is_some());
        // The neighbouring /64 and IPv4 addresses keep their own budgets.
        assert!(limits.auth_failures_exhausted(ip("2001:db8:1:3::1")).is_none());
        limits.auth_failed(ip("192.0.2.1"));
        limits.auth_failed(ip("192.0.2.1"));
        assert!(limits.auth_failures_exhausted(ip("192.0.2.1")).is_some());
        assert!(limits.auth_failures_exhausted(ip("192.0.2.2")).is_none());
        // IPv4-mapped IPv6 is the IPv4 address.
        assert!(limits.auth_failures_exhausted(ip("::ffff:192.0.2.1")).is_some());
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
