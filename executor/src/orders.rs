//! Order rows: the targets of a signal, one row per signal and account committed before any
//! network call (the unique (signal_id, user_id) key makes a second one impossible), and the
//! outcome of a submission (recorded in groups by `settle`).

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

/// One planned row and the signal it belongs to.
#[derive(Debug, Clone)]
pub struct SignalOrder<'a> {
    pub signal_id: Uuid,
    pub symbol: &'a str,
    pub order: &'a PlannedOrder,
}

/// Write the planned rows of a batch of signals and return every row of those signals still to be
/// sent (with the key material the POST needs); a row that already exists for (signal, user) wins
/// and is kept as is.
///
/// One statement, one commit and so one WAL flush for the whole batch, whether it holds 1 signal
/// with 1,000 targets or 100 signals with 1 each: the rows are durable before any POST, which is
/// what "never trade twice" rests on. The rows come back from the same statement: new ones from
/// `RETURNING`, and rows an earlier claim already wrote (a retried signal) from the snapshot the
/// statement started with, so none is returned twice and there is no separate read back.
#[tracing::instrument(skip(client, planned, signal_ids), fields(orders = planned.len(), signals = signal_ids.len()))]
pub async fn insert_planned(
    client: &impl GenericClient,
    planned: &[SignalOrder<'_>],
    signal_ids: &[Uuid],
) -> Result<Vec<PendingOrder>, tokio_postgres::Error> {
    if signal_ids.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = client
        .prepare_cached(
            "WITH inserted AS ( \
                 INSERT INTO orders (id, signal_id, user_id, api_key_id, order_link_id, symbol, side, qty, \
                                     reduce_only, status, error) \
                 SELECT t.id, t.signal_id, t.user_id, t.api_key_id, t.order_link_id, t.symbol, t.side, t.qty, \
                        t.reduce_only, t.status, t.error \
                 FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], \
                             $7::text[], $8::numeric[], $9::bool[], $10::text[], $11::text[]) \
                      AS t (id, signal_id, user_id, api_key_id, order_link_id, symbol, side, qty, reduce_only, \
                            status, error) \
                 ON CONFLICT (signal_id, user_id) DO NOTHING \
                 RETURNING id, signal_id, user_id, api_key_id, order_link_id, symbol, side, qty, reduce_only, \
                           attempts, status), \
             to_send AS ( \
                 SELECT id, signal_id, user_id, api_key_id, order_link_id, symbol, side, qty, reduce_only, attempts \
                 FROM inserted WHERE status = 'pending' \
                 UNION ALL \
                 SELECT id, signal_id, user_id, api_key_id, order_link_id, symbol, side, qty, reduce_only, attempts \
                 FROM orders WHERE signal_id = ANY($12) AND status = 'pending') \
             SELECT o.id, o.signal_id, o.user_id, o.api_key_id, o.order_link_id, o.symbol, o.side, o.qty, \
                    o.reduce_only, o.attempts, k.api_key_enc, k.api_secret_enc, \
                    (k.revoked_at IS NULL AND k.unusable_at IS NULL) \
             FROM to_send o JOIN api_keys k ON k.id = o.api_key_id \
             ORDER BY o.signal_id, o.id",
        )
        .await?;
    let ids: Vec<Uuid> = planned.iter().map(|_| Uuid::now_v7()).collect();
    let link_ids: Vec<String> = ids.iter().map(|id| order_link_id(*id)).collect();
    let signals: Vec<Uuid> = planned.iter().map(|p| p.signal_id).collect();
    let user_ids: Vec<Uuid> = planned.iter().map(|p| p.order.user_id).collect();
    let api_key_ids: Vec<Option<Uuid>> = planned.iter().map(|p| p.order.api_key_id).collect();
    let symbols: Vec<&str> = planned.iter().map(|p| p.symbol).collect();
    let sides: Vec<&str> = planned.iter().map(|p| p.order.side).collect();
    let qtys: Vec<Option<Decimal>> = planned.iter().map(|p| p.order.qty).collect();
    let reduce_only: Vec<bool> = planned.iter().map(|p| p.order.reduce_only).collect();
    let statuses: Vec<&str> = planned
        .iter()
        .map(|p| {
            if p.order.skip_reason.is_some() {
                "skipped"
            } else {
                "pending"
            }
        })
        .collect();
    let errors: Vec<Option<&str>> = planned.iter().map(|p| p.order.skip_reason.as_deref()).collect();
    let rows = client
        .query(
            &stmt,
            &[
                &ids,
                &signals,
                &user_ids,
                &api_key_ids,
                &link_ids,
                &symbols,
                &sides,
                &qtys,
                &reduce_only,
                &statuses,
                &errors,
                &signal_ids,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| PendingOrder {
            id: r.get(0),
            signal_id: r.get(1),
            user_id: r.get(2),
            api_key_id: r.get(3),
            order_link_id: r.get(4),
            symbol: r.get(5),
            side: r.get(6),
            qty: r.get(7),
            reduce_only: r.get(8),
            attempts: r.get(9),
            key_enc: r.get(10),
            secret_enc: r.get(11),
            key_usable: r.get(12),
        })
        .collect())
}

/// A row still to be sent.
#[derive(Clone)]
pub struct PendingOrder {
    pub id: Uuid,
    pub signal_id: Uuid,
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

/// The key ciphertexts stay out of Debug output.
impl std::fmt::Debug for PendingOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingOrder")
            .field("id", &self.id)
            .field("signal_id", &self.signal_id)
            .field("api_key_id", &self.api_key_id)
            .field("order_link_id", &self.order_link_id)
            .field("symbol", &self.symbol)
            .field("side", &self.side)
            .field("qty", &self.qty)
            .field("reduce_only", &self.reduce_only)
            .field("attempts", &self.attempts)
            .field("key_usable", &self.key_usable)
            .finish_non_exhaustive()
    }
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
