//! Order rows: the targets of a signal, one row per signal and account committed before any
//! network call (the unique (signal_id, user_id) key makes a second one impossible), and the
//! recorded outcome of each submission.

use deadpool_postgres::GenericClient;
use rust_decimal::Decimal;
use uuid::Uuid;

/// One account a signal should trade on, as the database sees it at execution time.
#[derive(Debug, Clone)]
pub struct Target {
    pub user_id: Uuid,
    pub size_multiplier: Decimal,
    pub max_qty: Option<Decimal>,
    /// Why this user may not trade now, if so (subscription ended between ingest and execution).
    pub inactive_reason: Option<String>,
    pub api_key: Option<TargetKey>,
}

#[derive(Debug, Clone)]
pub struct TargetKey {
    pub id: Uuid,
    pub key_enc: Vec<u8>,
    pub secret_enc: Vec<u8>,
}

const TARGETS: &str = "\
    SELECT u.id, COALESCE(s.size_multiplier, 1), s.max_qty, \
           CASE WHEN NOT u.active THEN 'the user is deactivated' \
                WHEN s.id IS NULL THEN 'the user has no subscription' \
                WHEN s.status <> 'active' THEN 'the subscription is inactive' \
                WHEN s.expires_at IS NOT NULL AND s.expires_at <= now() \
                     THEN 'the subscription expired before execution' END, \
           k.id, k.api_key_enc, k.api_secret_enc \
    FROM users u \
    LEFT JOIN subscriptions s ON s.user_id = u.id \
    LEFT JOIN LATERAL ( \
        SELECT id, api_key_enc, api_secret_enc FROM api_keys \
        WHERE user_id = u.id AND revoked_at IS NULL AND unusable_at IS NULL \
        ORDER BY created_at DESC LIMIT 1) k ON true \
    WHERE ($1::uuid IS NOT NULL AND u.id = $1) \
       OR ($2::uuid IS NOT NULL AND s.strategy_id = $2 AND s.status = 'active') \
    ORDER BY u.id";

/// The token's user, or every user following the strategy with an active status.
#[tracing::instrument(skip(client))]
pub async fn targets(
    client: &impl GenericClient,
    user_id: Option<Uuid>,
    strategy_id: Option<Uuid>,
) -> Result<Vec<Target>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(TARGETS).await?;
    let rows = client.query(&stmt, &[&user_id, &strategy_id]).await?;
    Ok(rows
        .iter()
        .map(|r| Target {
            user_id: r.get(0),
            size_multiplier: r.get(1),
            max_qty: r.get(2),
            inactive_reason: r.get(3),
            api_key: r.get::<_, Option<Uuid>>(4).map(|id| TargetKey {
                id,
                key_enc: r.get(5),
                secret_enc: r.get(6),
            }),
        })
        .collect())
}

/// A row to write for one target.
#[derive(Debug, Clone)]
pub struct PlannedOrder {
    pub user_id: Uuid,
    pub api_key_id: Option<Uuid>,
    pub side: &'static str,
    pub qty: Option<Decimal>,
    pub reduce_only: bool,
    /// Some: the row is written as skipped with this reason and nothing is sent.
    pub skip_reason: Option<String>,
}

/// The orderLinkId of an order row: `hbx-` and the row id's 32 hex digits, 36 characters, derived
/// from the row so every retry of the same order carries the same id.
pub fn order_link_id(order_id: Uuid) -> String {
    format!("hbx-{}", order_id.simple())
}

/// Write the planned rows; a row that already exists for (signal, user) wins and is kept as is.
///
/// One statement for all of them: one commit (one WAL flush) whether the signal has 1 target or
/// 1,000, so a fan-out does not wait for a flush per subscriber before its first order is sent.
#[tracing::instrument(skip(client, planned), fields(orders = planned.len()))]
pub async fn insert_planned(
    client: &impl GenericClient,
    signal_id: Uuid,
    symbol: &str,
    planned: &[PlannedOrder],
) -> Result<(), tokio_postgres::Error> {
    if planned.is_empty() {
        return Ok(());
    }
    let stmt = client
        .prepare_cached(
            "INSERT INTO orders (id, signal_id, user_id, api_key_id, order_link_id, symbol, side, qty, \
                                 reduce_only, status, error) \
             SELECT t.id, $1, t.user_id, t.api_key_id, t.order_link_id, $2, t.side, t.qty, \
                    t.reduce_only, t.status, t.error \
             FROM UNNEST($3::uuid[], $4::uuid[], $5::uuid[], $6::text[], $7::text[], $8::numeric[], \
                         $9::bool[], $10::text[], $11::text[]) \
                  AS t (id, user_id, api_key_id, order_link_id, side, qty, reduce_only, status, error) \
             ON CONFLICT (signal_id, user_id) DO NOTHING",
        )
        .await?;
    let ids: Vec<Uuid> = planned.iter().map(|_| Uuid::now_v7()).collect();
    let link_ids: Vec<String> = ids.iter().map(|id| order_link_id(*id)).collect();
    let user_ids: Vec<Uuid> = planned.iter().map(|p| p.user_id).collect();
    let api_key_ids: Vec<Option<Uuid>> = planned.iter().map(|p| p.api_key_id).collect();
    let sides: Vec<&str> = planned.iter().map(|p| p.side).collect();
    let qtys: Vec<Option<Decimal>> = planned.iter().map(|p| p.qty).collect();
    let reduce_only: Vec<bool> = planned.iter().map(|p| p.reduce_only).collect();
    let statuses: Vec<&str> = planned
        .iter()
        .map(|p| {
            if p.skip_reason.is_some() {
                "skipped"
            } else {
                "pending"
            }
        })
        .collect();
    let errors: Vec<Option<&str>> = planned.iter().map(|p| p.skip_reason.as_deref()).collect();
    client
        .execute(
            &stmt,
            &[
                &signal_id,
                &symbol,
                &ids,
                &user_ids,
                &api_key_ids,
                &link_ids,
                &sides,
                &qtys,
                &reduce_only,
                &statuses,
                &errors,
            ],
        )
        .await?;
    Ok(())
}

/// A row still to be sent.
#[derive(Debug, Clone)]
pub struct PendingOrder {
    pub id: Uuid,
    pub user_id: Uuid,
    pub api_key_id: Uuid,
    pub order_link_id: String,
    pub symbol: String,
    pub side: String,
    pub qty: Decimal,
    pub reduce_only: bool,
    pub attempts: i32,
    pub key_enc: Vec<u8>,
    pub secret_enc: Vec<u8>,
    pub key_usable: bool,
}

/// The signal's rows still in 'pending', with their key material.
#[tracing::instrument(skip(client))]
pub async fn pending_for_signal(
    client: &impl GenericClient,
    signal_id: Uuid,
) -> Result<Vec<PendingOrder>, tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "SELECT o.id, o.user_id, o.api_key_id, o.order_link_id, o.symbol, o.side, o.qty, o.reduce_only, \
                    o.attempts, k.api_key_enc, k.api_secret_enc, \
                    (k.revoked_at IS NULL AND k.unusable_at IS NULL) \
             FROM orders o JOIN api_keys k ON k.id = o.api_key_id \
             WHERE o.signal_id = $1 AND o.status = 'pending' ORDER BY o.id",
        )
        .await?;
    let rows = client.query(&stmt, &[&signal_id]).await?;
    Ok(rows
        .iter()
        .map(|r| PendingOrder {
            id: r.get(0),
            user_id: r.get(1),
            api_key_id: r.get(2),
            order_link_id: r.get(3),
            symbol: r.get(4),
            side: r.get(5),
            qty: r.get(6),
            reduce_only: r.get(7),
            attempts: r.get(8),
            key_enc: r.get(9),
            secret_enc: r.get(10),
            key_usable: r.get(11),
        })
        .collect())
}

/// What became of one submission.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The exchange holds the order (acknowledged now, or found by orderLinkId).
    Submitted { exchange_order_id: String },
    /// The exchange definitively refused it.
    Rejected { code: Option<String>, message: String },
    /// It could not be placed after every retry; nothing is known to exist on the exchange.
    Failed { message: String },
    /// It may or may not exist and the exchange cannot be asked now: the row stays pending.
    Unsettled { message: String },
}

/// Record an outcome. The status moves only from 'pending' (a fill push can arrive before the
/// create call returns, and a row never goes backwards), while the exchange id and the submission
/// time are kept whichever came first.
#[tracing::instrument(skip(client), fields(order_id = %order_id))]
pub async fn record(
    client: &impl GenericClient,
    order_id: Uuid,
    outcome: &Outcome,
    attempts: i32,
) -> Result<(), tokio_postgres::Error> {
    let (status, exchange_id, code, message): (&str, Option<&str>, Option<&str>, Option<&str>) = match outcome
    {
        Outcome::Submitted { exchange_order_id } => ("submitted", Some(exchange_order_id), None, None),
        Outcome::Rejected { code, message } => ("rejected", None, code.as_deref(), Some(message)),
        Outcome::Failed { message } => ("failed", None, None, Some(message)),
        Outcome::Unsettled { message } => ("pending", None, None, Some(message)),
    };
    let stmt = client
        .prepare_cached(
            "UPDATE orders SET \
                 status = CASE WHEN status = 'pending' THEN $2 ELSE status END, \
                 exchange_order_id = COALESCE(exchange_order_id, $3), \
                 error_code = CASE WHEN status = 'pending' THEN $4 ELSE error_code END, \
                 error = CASE WHEN status = 'pending' THEN $5 ELSE error END, \
                 attempts = GREATEST(attempts, $6), \
                 submitted_at = CASE WHEN $2 = 'submitted' THEN COALESCE(submitted_at, now()) ELSE submitted_at END, \
                 updated_at = now() \
             WHERE id = $1",
        )
        .await?;
    client
        .execute(
            &stmt,
            &[&order_id, &status, &exchange_id, &code, &message, &attempts],
        )
        .await?;
    Ok(())
}

/// Mark a key unusable after the exchange refused it (10003, 10004, 10005, 10010).
pub async fn mark_key_unusable(
    client: &impl GenericClient,
    api_key_id: Uuid,
    reason: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE api_keys SET unusable_reason = $2, unusable_at = now() WHERE id = $1 AND unusable_at IS NULL",
            &[&api_key_id, &reason],
        )
        .await?;
    Ok(())
}
