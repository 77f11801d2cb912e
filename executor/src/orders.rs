//! Order rows: the targets of a signal, one row per signal and account committed before any
//! network call (the unique (signal_id, user_id) key makes a second one impossible), and the
//! outcome of a submission (recorded in groups by `settle`).

use deadpool_postgres::GenericClient;
use humbex_shared::api_key_vault::{KeyRow, StoredPair};
use humbex_shared::store::orders;
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

impl TargetKey {
    /// What the vault opens for `user_id`'s key: see [`sealed_key`].
    pub fn sealed(&self, user_id: Uuid) -> (KeyRow, StoredPair<'_>) {
        sealed_key(self.id, user_id, &self.key_enc, &self.secret_enc)
    }
}

/// A key's row and its two ciphertexts, which open only for that row (the vault binds them to it).
fn sealed_key<'a>(
    id: Uuid,
    user_id: Uuid,
    key_enc: &'a [u8],
    secret_enc: &'a [u8],
) -> (KeyRow, StoredPair<'a>) {
    (KeyRow { id, user_id }, StoredPair { key_enc, secret_enc })
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
    let stmt = client.prepare_cached(orders::INSERT_PLANNED).await?;
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
    Ok(rows.iter().map(PendingOrder::from_row).collect())
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

impl PendingOrder {
    /// A row of `orders::INSERT_PLANNED` or `orders::PENDING_OF_OWNER`, by column name.
    pub fn from_row(r: &tokio_postgres::Row) -> Self {
        PendingOrder {
            id: r.get("id"),
            signal_id: r.get("signal_id"),
            user_id: r.get("user_id"),
            api_key_id: r.get("api_key_id"),
            order_link_id: r.get("order_link_id"),
            symbol: r.get("symbol"),
            side: r.get("side"),
            qty: r.get("qty"),
            reduce_only: r.get("reduce_only"),
            attempts: r.get("attempts"),
            key_enc: r.get("api_key_enc"),
            secret_enc: r.get("api_secret_enc"),
            key_usable: r.get("key_usable"),
        }
    }

    /// What the vault opens for this order's key: see [`sealed_key`].
    pub fn sealed_key(&self) -> (KeyRow, StoredPair<'_>) {
        sealed_key(self.api_key_id, self.user_id, &self.key_enc, &self.secret_enc)
    }
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
