//! The executor's own settings: how often it sweeps for work and re-checks stored keys, its lease
//! time and how fast it opens private streams.

use std::time::Duration;

use super::parse::{ConfigError, Get, bad};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorConfig {
    /// Time between catch-up sweeps (WORKER_POLL_INTERVAL).
    pub worker_poll_interval: Duration,
    /// How often the executor asks Bybit again what each usable key may do (KEY_RECHECK_INTERVAL_SECS).
    pub key_recheck_interval: Duration,
    /// How long an executor's claim on a signal or an account lasts unless renewed
    /// (EXECUTOR_LEASE_SECS): a dead executor's work moves on within it.
    pub lease: Duration,
    /// Private stream connects an executor opens per minute at most when it takes accounts over
    /// (EXECUTOR_STREAM_CONNECTS_PER_MINUTE).
    pub stream_connects_per_minute: u32,
}

pub(crate) fn lease(get: Get) -> Result<Duration, ConfigError> {
    match get("EXECUTOR_LEASE_SECS") {
        None => Ok(Duration::from_secs(10)),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|secs| (2..=600).contains(secs))
            .map(Duration::from_secs)
            .ok_or_else(|| {
                bad(
                    "EXECUTOR_LEASE_SECS",
                    format!("{v:?} is not a whole number of seconds between 2 and 600"),
                )
            }),
    }
}

pub(crate) fn stream_connects_per_minute(get: Get) -> Result<u32, ConfigError> {
    match get("EXECUTOR_STREAM_CONNECTS_PER_MINUTE") {
        None => Ok(100),
        Some(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or_else(|| {
                bad(
                    "EXECUTOR_STREAM_CONNECTS_PER_MINUTE",
                    format!("{v:?} is not a whole number between 1 and 1000000"),
                )
            }),
    }
}

pub(crate) fn key_recheck_interval(get: Get) -> Result<Duration, ConfigError> {
    match get("KEY_RECHECK_INTERVAL_SECS") {
        None => Ok(Duration::from_secs(86_400)),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|secs| (1..=30 * 86_400).contains(secs))
            .map(Duration::from_secs)
            .ok_or_else(|| {
                bad(
                    "KEY_RECHECK_INTERVAL_SECS",
                    format!("{v:?} is not a whole number of seconds between 1 and 2592000"),
                )
            }),
    }
}

pub(crate) fn worker_poll_interval(get: Get) -> Result<Duration, ConfigError> {
    match get("WORKER_POLL_INTERVAL") {
        None => Ok(Duration::from_secs(5)),
        Some(v) => {
            let secs: f64 = v.trim().parse().map_err(|_| {
                bad(
                    "WORKER_POLL_INTERVAL",
                    format!("{v:?} is not a number of seconds"),
                )
            })?;
            if !(0.05..=3600.0).contains(&secs) {
                return Err(bad(
                    "WORKER_POLL_INTERVAL",
                    "must be between 0.05 and 3600 seconds",
                ));
            }
            Ok(Duration::from_secs_f64(secs))
        }
    }
}
