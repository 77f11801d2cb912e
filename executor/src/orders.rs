//! Order rows: the targets of a signal, one row per signal, account and leg committed before any
//! network call (the unique (signal_id, user_id, leg) key makes a second one impossible), and the
//! outcome of a submission (recorded in groups by `settle`).

use humbex_shared::api_key_vault::{KeyRow, StoredPair};
use humbex_shared::db::Statements;
use humbex_shared::domain::trade::{OrderType, SubscriptionDefaults, TimeInForce};
use humbex_shared::store::orders;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::trade::target::LegKind;

/// One account a signal should trade on, as the database sees it at execution time.
#[derive(Debug, Clone)]
pub struct Target {
    pub user_id: Uuid,
    pub size_multiplier: Decimal,
    pub max_qty: Option<Decimal>,
    /// The subscription's leverage and margin mode for its signals.
    pub defaults: SubscriptionDefaults,
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
    /// The reason's stable code (`stale`, `below_min_notional`, ...), kept as `error_code`.
    pub skip_code: Option<String>,
    /// How the order is placed and protected; the default is a v1 market order.
    pub terms: OrderTerms,
}

/// The v2 terms of an order row (docs/trading-v2-executor.md); all `None` for a v1 signal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderTerms {
    pub leg: LegKind,
    pub order_type: OrderType,
    pub limit_price: Option<Decimal>,
    pub time_in_force: Option<TimeInForce>,
    pub trigger_price: Option<Decimal>,
    /// Prices known before the fill, attached to the order; percents are set after the fill.
    pub take_profit: Option<Decimal>,
    pub stop_loss: Option<Decimal>,
    pub trailing_stop: Option<Decimal>,
    pub leverage: Option<Decimal>,
    pub cancel_after_secs: Option<i32>,
    /// Protection to set once the fill price is known (percent TP/SL, trailing stop).
    pub protect_after_fill: bool,
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
    client: &impl Statements,
    planned: &[SignalOrder<'_>],
    signal_ids: &[Uuid],
) -> Result<Vec<PendingOrder>, tokio_postgres::Error> {
    if signal_ids.is_empty() {
        return Ok(Vec::new());
    }
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
    let terms = |f: &dyn Fn(&OrderTerms) -> Option<Decimal>| -> Vec<Option<Decimal>> {
        planned.iter().map(|p| f(&p.order.terms)).collect()
    };
    let legs: Vec<&str> = planned.iter().map(|p| p.order.terms.leg.as_str()).collect();
    let codes: Vec<Option<&str>> = planned.iter().map(|p| p.order.skip_code.as_deref()).collect();
    let order_types: Vec<&str> = planned
        .iter()
        .map(|p| p.order.terms.order_type.as_str())
        .collect();
    let tifs: Vec<Option<&str>> = planned
        .iter()
        .map(|p| p.order.terms.time_in_force.map(TimeInForce::as_str))
        .collect();
    let cancel_after: Vec<Option<i32>> = planned.iter().map(|p| p.order.terms.cancel_after_secs).collect();
    let protect: Vec<bool> = planned.iter().map(|p| p.order.terms.protect_after_fill).collect();
    let rows = client
        .rows(
            orders::INSERT_PLANNED,
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
                &legs,
                &codes,
                &order_types,
                &terms(&|t| t.limit_price),
                &tifs,
                &terms(&|t| t.trigger_price),
                &terms(&|t| t.take_profit),
                &terms(&|t| t.stop_loss),
                &terms(&|t| t.trailing_stop),
                &terms(&|t| t.leverage),
                &cancel_after,
                &protect,
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
    /// `single`, `reduce` or `open` (a target sync's legs).
    pub leg: String,
    /// `market` or `limit`, with its price and time in force.
    pub order_type: String,
    pub limit_price: Option<Decimal>,
    pub time_in_force: Option<String>,
    /// A conditional entry's trigger.
    pub trigger_price: Option<Decimal>,
    /// Protection attached to the order itself.
    pub take_profit: Option<Decimal>,
    pub stop_loss: Option<Decimal>,
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
            leg: r.get("leg"),
            order_type: r.get("order_type"),
            limit_price: r.get("limit_price"),
            time_in_force: r.get("time_in_force"),
            trigger_price: r.get("trigger_price"),
            take_profit: r.get("take_profit"),
            stop_loss: r.get("stop_loss"),
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
            .field("leg", &self.leg)
            .field("order_type", &self.order_type)
            .field("limit_price", &self.limit_price)
            .field("trigger_price", &self.trigger_price)
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
