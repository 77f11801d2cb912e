//! Claiming signals as leases: `FOR UPDATE SKIP LOCKED` lets several executors share one database
//! without double work; a claim held by a dead executor is taken over once its lease expires, and
//! a live executor renews its leases so they are never stolen.

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use rust_decimal::Decimal;
use uuid::Uuid;

/// A claimed signal, as the planner needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedSignal {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub strategy_id: Option<Uuid>,
    pub action: String,
    pub symbol: String,
    pub quantity: Option<Decimal>,
    pub price: Option<Decimal>,
    pub received_at: DateTime<Utc>,
    /// 1 on the first claim; more means an earlier executor held it and its lease ran out.
    pub attempts: i32,
}

/// Claims and finishes commit without waiting for the WAL flush (`synchronous_commit` off for that
/// statement's transaction only). Safe: a claim lost in a crash only means the signal is claimed
/// again and finds its order rows; a lost finish, that it is finished again. The order rows, whose
/// durability "never twice" rests on, are written by other statements with the flush. It takes one
/// of the three flushes off the way from webhook to exchange.
const CLAIM: &str = "\
    WITH no_flush AS (SELECT set_config('synchronous_commit', 'off', true)), \
    next AS ( \
        SELECT id FROM signals \
        WHERE (status = 'received' OR (status = 'processing' AND claimed_until < now())) \
          AND ($3::uuid IS NULL OR id = $3) \
        ORDER BY received_at \
        LIMIT $2 \
        FOR UPDATE SKIP LOCKED) \
    UPDATE signals s SET status = 'processing', claimed_by = $1, \
        claimed_until = now() + make_interval(secs => $4), attempts = s.attempts + 1, updated_at = now() \
    FROM next, no_flush WHERE s.id = next.id \
    RETURNING s.id, s.user_id, s.strategy_id, s.action, s.symbol, s.quantity, s.price, s.received_at, s.attempts";

/// Claim up to `limit` signals (or only `only`, when given) for `executor` for `lease`.
#[tracing::instrument(skip(client), fields(executor))]
pub async fn claim(
    client: &impl GenericClient,
    executor: &str,
    limit: i64,
    only: Option<Uuid>,
    lease: Duration,
) -> Result<Vec<ClaimedSignal>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(CLAIM).await?;
    let rows = client
        .query(&stmt, &[&executor, &limit, &only, &lease.as_secs_f64()])
        .await?;
    Ok(rows
        .iter()
        .map(|r| ClaimedSignal {
            id: r.get(0),
            user_id: r.get(1),
            strategy_id: r.get(2),
            action: r.get(3),
            symbol: r.get(4),
            quantity: r.get(5),
            price: r.get(6),
            received_at: r.get(7),
            attempts: r.get(8),
        })
        .collect())
}

/// Extend the leases of the signals this executor is working on right now. Only those: a claim
/// whose task ended without finishing it (its last write failed, say) must be left to expire, so
/// that a sweep claims it again instead of it staying `processing` forever.
#[tracing::instrument(skip(client, signals), fields(signals = signals.len()))]
pub async fn renew(
    client: &impl GenericClient,
    executor: &str,
    signals: &[Uuid],
    lease: Duration,
) -> Result<u64, tokio_postgres::Error> {
    if signals.is_empty() {
        return Ok(0);
    }
    client
        .execute(
            "UPDATE signals SET claimed_until = now() + make_interval(secs => $3) \
             WHERE id = ANY($2) AND claimed_by = $1 AND status = 'processing'",
            &[&executor, &signals, &lease.as_secs_f64()],
        )
        .await
}

/// Mark a claimed signal finished, only if `executor` still holds it (a lost lease means another
/// executor owns it now, and its outcome wins).
#[tracing::instrument(skip(client))]
pub async fn finish(
    client: &impl GenericClient,
    executor: &str,
    signal: Uuid,
    reject_reason: Option<&str>,
) -> Result<bool, tokio_postgres::Error> {
    let status = if reject_reason.is_some() {
        "rejected"
    } else {
        "done"
    };
    let n = client
        .execute(
            "UPDATE signals SET status = $3, reject_reason = $4, processed_at = now(), updated_at = now(), \
                 claimed_until = NULL \
             FROM (SELECT set_config('synchronous_commit', 'off', true)) AS no_flush \
             WHERE id = $1 AND claimed_by = $2 AND status = 'processing'",
            &[&signal, &executor, &status, &reject_reason],
        )
        .await?;
    Ok(n == 1)
}

/// Give a signal back for a later try (some of its orders could not be settled now): another
/// sweep, here or in another executor, claims it again after `retry_in`.
#[tracing::instrument(skip(client))]
pub async fn release(
    client: &impl GenericClient,
    executor: &str,
    signal: Uuid,
    retry_in: Duration,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE signals SET claimed_by = NULL, claimed_until = now() + make_interval(secs => $3), \
                 updated_at = now() \
             WHERE id = $1 AND claimed_by = $2 AND status = 'processing'",
            &[&signal, &executor, &retry_in.as_secs_f64()],
        )
        .await?;
    Ok(())
}
