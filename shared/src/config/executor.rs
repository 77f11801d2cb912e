//! The executor's own settings: how often it sweeps for work and re-checks stored keys.

use std::time::Duration;

use super::parse::{ConfigError, Get, bad};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorConfig {
    /// Time between catch-up sweeps (WORKER_POLL_INTERVAL).
    pub worker_poll_interval: Duration,
    /// How often the executor asks Bybit again what each usable key may do (KEY_RECHECK_INTERVAL_SECS).
    pub key_recheck_interval: Duration,
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
