//! Claiming signals as leases: `FOR UPDATE SKIP LOCKED` lets several executors share one database
//! without double work; a claim held by a dead executor is taken over once its lease expires, and
//! a live executor renews its leases so they are never stolen. A claim takes a batch of signals
//! and reads their targets in the same statement.

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::orders::{Target, TargetKey};

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

/// Claims commit without waiting for the WAL flush (`synchronous_commit` off for that statement's
/// transaction only). Safe: a claim lost in a crash only means the signal is claimed again and finds
/// its order rows. The order rows, whose durability "never twice" rests on, are written by another
/// statement with the flush, and WAL is flushed in order, so a flushed order row implies its claim.
///
/// The same statement reads each claimed signal's targets (a lateral join over the claimed rows),
/// so the planner has everything after one round trip. Two branches rather than one `OR`, so each
/// uses its index: the token's user by primary key, a strategy's active subscribers by
/// `subscriptions_strategy_active`.
const CLAIM: &str = "\
    WITH no_flush AS (SELECT set_config('synchronous_commit', 'off', true)), \
    next AS ( \
        SELECT id FROM signals \
        WHERE (status = 'received' OR (status = 'processing' AND claimed_until < now())) \
          AND ($3::uuid[] IS NULL OR id = ANY($3)) \
        ORDER BY received_at \
        LIMIT $2 \
        FOR UPDATE SKIP LOCKED), \
    claimed AS ( \
        UPDATE signals s SET status = 'processing', claimed_by = $1, \
            claimed_until = now() + make_interval(secs => $4), attempts = s.attempts + 1, updated_at = now() \
        FROM next, no_flush WHERE s.id = next.id \
        RETURNING s.id, s.user_id, s.strategy_id, s.action, s.symbol, s.quantity, s.price, s.received_at, \
                  s.attempts) \
    SELECT c.id, c.user_id, c.strategy_id, c.action, c.symbol, c.quantity, c.price, c.received_at, c.attempts, \
           t.user_id, t.size_multiplier, t.max_qty, t.inactive_reason, t.key_id, t.api_key_enc, t.api_secret_enc \
    FROM claimed c \
    LEFT JOIN LATERAL ( \
        SELECT u.id AS user_id, COALESCE(s.size_multiplier, 1) AS size_multiplier, s.max_qty, \
               CASE WHEN NOT u.active THEN 'the user is deactivated' \
                    WHEN s.id IS NULL THEN 'the user has no subscription' \
                    WHEN s.status <> 'active' THEN 'the subscription is inactive' \
                    WHEN s.expires_at IS NOT NULL AND s.expires_at <= now() \
                         THEN 'the subscription expired before execution' END AS inactive_reason, \
               k.id AS key_id, k.api_key_enc, k.api_secret_enc \
        FROM users u \
        LEFT JOIN subscriptions s ON s.user_id = u.id \
        LEFT JOIN LATERAL ( \
            SELECT id, api_key_enc, api_secret_enc FROM api_keys \
            WHERE user_id = u.id AND revoked_at IS NULL AND unusable_at IS NULL \
            ORDER BY created_at DESC LIMIT 1) k ON true \
        WHERE u.id = c.user_id \
        UNION ALL \
        SELECT u.id, s.size_multiplier, s.max_qty, \
               CASE WHEN NOT u.active THEN 'the user is deactivated' \
                    WHEN s.expires_at IS NOT NULL AND s.expires_at <= now() \
                         THEN 'the subscription expired before execution' END, \
               k.id, k.api_key_enc, k.api_secret_enc \
        FROM subscriptions s \
        JOIN users u ON u.id = s.user_id \
        LEFT JOIN LATERAL ( \
            SELECT id, api_key_enc, api_secret_enc FROM api_keys \
            WHERE user_id = u.id AND revoked_at IS NULL AND unusable_at IS NULL \
            ORDER BY created_at DESC LIMIT 1) k ON true \
        WHERE s.strategy_id = c.strategy_id AND s.status = 'active') t ON true \
    ORDER BY c.received_at, c.id, t.user_id";

/// A claimed signal with the accounts it should trade on, as the database saw them at the claim.
#[derive(Debug, Clone)]
pub struct ClaimedWork {
    pub signal: ClaimedSignal,
    /// Empty: the token's user is gone, or the strategy has no active subscriber.
    pub targets: Vec<Target>,
}

/// Claim up to `limit` signals (only among `only`, when given) for `executor` for `lease`, each with
/// its targets, in the order they were received.
#[tracing::instrument(skip(client), fields(executor))]
pub async fn claim(
    client: &impl GenericClient,
    executor: &str,
    limit: i64,
    only: Option<&[Uuid]>,
    lease: Duration,
) -> Result<Vec<ClaimedWork>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(CLAIM).await?;
    let rows = client
        .query(&stmt, &[&executor, &limit, &only, &lease.as_secs_f64()])
        .await?;
    let mut claimed: Vec<ClaimedWork> = Vec::new();
    for r in &rows {
        let id: Uuid = r.get(0);
        if claimed.last().is_none_or(|w| w.signal.id != id) {
            claimed.push(ClaimedWork {
                signal: ClaimedSignal {
                    id,
                    user_id: r.get(1),
                    strategy_id: r.get(2),
                    action: r.get(3),
                    symbol: r.get(4),
                    quantity: r.get(5),
                    price: r.get(6),
                    received_at: r.get(7),
                    attempts: r.get(8),
                },
                targets: Vec::new(),
            });
        }
        let Some(user_id) = r.get::<_, Option<Uuid>>(9) else {
            continue;
        };
        let work = claimed.last_mut().expect("pushed above");
        work.targets.push(Target {
            user_id,
            size_multiplier: r.get(10),
            max_qty: r.get(11),
            inactive_reason: r.get(12),
            api_key: r.get::<_, Option<Uuid>>(13).map(|id| TargetKey {
                id,
                key_enc: r.get(14),
                secret_enc: r.get(15),
            }),
        });
    }
    Ok(claimed)
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
            // Locked in id order first, as the settle writer does, so the two never deadlock.
            "WITH locked AS MATERIALIZED ( \
                 SELECT id FROM signals WHERE id = ANY($2) ORDER BY id FOR NO KEY UPDATE) \
             UPDATE signals SET claimed_until = now() + make_interval(secs => $3) \
             WHERE id IN (SELECT id FROM locked) AND claimed_by = $1 AND status = 'processing'",
            &[&executor, &signals, &lease.as_secs_f64()],
        )
        .await
}
