//! What the executor records beyond its hot path: every Bybit REST request (through the client's
//! observer hook) and the pending-signals gauges, counted from the database every few seconds
//! (one indexed query, nothing on the signal path). Names: docs/metrics.md.

use std::time::Duration;

use deadpool_postgres::Pool;
use humbex_bybit::{RequestFailure, RestObserver};
use humbex_shared::db::Statements;
use humbex_shared::metrics::{ExchangeFailure, metrics};
use humbex_shared::store::signals;

/// How often the pending-signals gauges are refreshed: well inside the 30 s the alert allows.
pub const PENDING_INTERVAL: Duration = Duration::from_secs(5);

/// Records each exchange request's duration by endpoint, and its failure by code.
#[derive(Debug)]
pub struct ExchangeMetrics;

impl RestObserver for ExchangeMetrics {
    fn request_done(&self, endpoint: &'static str, elapsed: Duration, failure: Option<RequestFailure>) {
        let failure = failure.map(|f| match f {
            RequestFailure::RetCode(code) => ExchangeFailure::RetCode(code),
            RequestFailure::HttpStatus(status) => ExchangeFailure::HttpStatus(status),
            RequestFailure::Transport => ExchangeFailure::Transport,
        });
        metrics().exchange_request(endpoint, elapsed, failure);
    }
}

/// Refresh `humbex_signals_pending` and `humbex_signals_pending_oldest_seconds` forever.
pub async fn count_pending_forever(pool: Pool, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match count_pending(&pool).await {
            Ok((count, oldest)) => metrics().signals_pending(count, oldest),
            Err(e) => tracing::debug!(error = %e, "counting pending signals failed; next interval retries"),
        }
    }
}

#[tracing::instrument(skip_all)]
async fn count_pending(pool: &Pool) -> anyhow::Result<(i64, Duration)> {
    let client = pool.get().await?;
    let row = client.row(signals::PENDING, &[]).await?;
    let oldest: f64 = row.get("oldest_seconds");
    Ok((row.get("pending"), Duration::from_secs_f64(oldest.max(0.0))))
}
