//! Claiming signals as leases: `FOR UPDATE SKIP LOCKED` lets several executors share one database
//! without double work; a claim held by a dead executor is taken over once its lease expires, and
//! a live executor renews its leases so they are never stolen. A claim takes a batch of signals
//! and reads their targets in the same statement.

use std::time::Duration;

use chrono::{DateTime, Utc};
use humbex_shared::db::Statements;
use humbex_shared::domain::TradingRefusal;
use humbex_shared::domain::trade::{StrategyDefaults, SubscriptionDefaults, TradeSpec};
use humbex_shared::store::signals;
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
    /// A v1 signal (no v2 fields stored, `trade` NULL).
    pub plain: bool,
    /// The v2 fields as stored (before defaults); `None` when they cannot be read back (the
    /// signal is then refused, never traded as v1).
    pub trade: Option<TradeSpec>,
    /// The alert's own `timestamp`, for `max_lag_secs`.
    pub signal_time: Option<DateTime<Utc>>,
    pub strategy_defaults: StrategyDefaults,
}

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
    client: &impl Statements,
    executor: &str,
    limit: i64,
    only: Option<&[Uuid]>,
    lease: Duration,
) -> Result<Vec<ClaimedWork>, tokio_postgres::Error> {
    let rows = client
        .rows(
            signals::CLAIM.as_str(),
            &[&executor, &limit, &only, &lease.as_secs_f64()],
        )
        .await?;
    let mut claimed: Vec<ClaimedWork> = Vec::new();
    for r in &rows {
        let id: Uuid = r.get("id");
        if claimed.last().is_none_or(|w| w.signal.id != id) {
            claimed.push(ClaimedWork {
                signal: ClaimedSignal {
                    id,
                    user_id: r.get("user_id"),
                    strategy_id: r.get("strategy_id"),
                    action: r.get("action"),
                    symbol: r.get("symbol"),
                    quantity: r.get("quantity"),
                    price: r.get("price"),
                    received_at: r.get("received_at"),
                    attempts: r.get("attempts"),
                    // Unreadable v2 fields count as not plain: refused, never traded as v1.
                    plain: signals::trade_of(r).is_ok_and(|t| t.is_plain()),
                    trade: signals::trade_of(r).ok(),
                    signal_time: r.get("signal_time"),
                    strategy_defaults: signals::strategy_defaults_of(r).unwrap_or_else(|e| {
                        tracing::warn!(signal_id = %id, error = %e, "strategy defaults unreadable; none applied");
                        StrategyDefaults::default()
                    }),
                },
                targets: Vec::new(),
            });
        }
        let Some(user_id) = r.get::<_, Option<Uuid>>("target_user_id") else {
            continue;
        };
        let work = claimed.last_mut().expect("pushed above");
        work.targets.push(Target {
            user_id,
            size_multiplier: r.get("size_multiplier"),
            max_qty: r.get("max_qty"),
            defaults: signals::subscription_defaults_of(r).unwrap_or_else(|e| {
                tracing::warn!(user_id = %user_id, error = %e, "subscription defaults unreadable; none applied");
                SubscriptionDefaults::default()
            }),
            inactive_reason: r
                .get::<_, Option<TradingRefusal>>("refusal")
                .map(|refusal| inactive_reason(refusal).to_owned()),
            api_key: r.get::<_, Option<Uuid>>("key_id").map(|id| TargetKey {
                id,
                key_enc: r.get("api_key_enc"),
                secret_enc: r.get("api_secret_enc"),
            }),
        });
    }
    Ok(claimed)
}

/// How a refusal reads on a skipped order row: the user's state when the executor got to it.
fn inactive_reason(refusal: TradingRefusal) -> &'static str {
    match refusal {
        TradingRefusal::UserDeactivated => "the user is deactivated",
        TradingRefusal::NoSubscription => "the user has no subscription",
        TradingRefusal::SubscriptionInactive => "the subscription is inactive",
        TradingRefusal::SubscriptionExpired => "the subscription expired before execution",
    }
}

/// Extend the leases of the signals this executor is working on right now. Only those: a claim
/// whose task ended without finishing it (its last write failed, say) must be left to expire, so
/// that a sweep claims it again instead of it staying `processing` forever.
#[tracing::instrument(skip(client, signals), fields(signals = signals.len()))]
pub async fn renew(
    client: &impl Statements,
    executor: &str,
    signals: &[Uuid],
    lease: Duration,
) -> Result<u64, tokio_postgres::Error> {
    if signals.is_empty() {
        return Ok(0);
    }
    client
        .run(
            signals::RENEW_LEASES,
            &[&executor, &signals, &lease.as_secs_f64()],
        )
        .await
}
