//! Fill confirmation's database work: apply exchange order states, fills and positions to the
//! `orders`/`fills`/`positions` rows (a whole batch in one transaction, one multi-row statement per
//! kind of order event), find the orders to reconcile, disable keys. The orders' and fills'
//! statements live in `humbex_shared::store`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use humbex_bybit::{Execution, Order, OrderStatus, Position};
use humbex_shared::db::Statements;
use humbex_shared::domain::order_status;
use humbex_shared::store::{fills, orders};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::foreign;
use crate::trade::break_even::Armed;

/// The row status an exchange status maps to, with its rank: a row only ever moves to an equal or
/// higher rank, so a late or replayed `New` cannot undo a `Filled` seen earlier. `None` for states
/// this pipeline never produces (conditional orders, unknown values): those change nothing and
/// the order is re-checked by reconciliation.
pub fn row_status(status: OrderStatus) -> Option<(&'static str, i32)> {
    let row = match status {
        OrderStatus::New | OrderStatus::Untriggered | OrderStatus::Triggered => order_status::NEW,
        OrderStatus::PartiallyFilled => order_status::PARTIALLY_FILLED,
        OrderStatus::Filled => order_status::FILLED,
        OrderStatus::Cancelled | OrderStatus::Deactivated | OrderStatus::PartiallyFilledCanceled => {
            order_status::CANCELLED
        }
        OrderStatus::Rejected => order_status::REJECTED,
        OrderStatus::Unknown => return None,
    };
    Some((row, order_status::rank(row)))
}

/// What an exchange order state did to our row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedOrder {
    pub order_id: Uuid,
    /// The row's status afterwards (unchanged when the update was older than the row).
    pub status: String,
    /// Set when this update filled an order whose protection waits for the fill price.
    pub protect: Option<ProtectJob>,
}

/// An entry just filled whose TP/SL/trailing stop is set now, from its average fill price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectJob {
    pub order_id: Uuid,
    pub api_key_id: Uuid,
    pub signal_id: Uuid,
    pub symbol: String,
    pub buy: bool,
    pub avg_price: Decimal,
}

/// An order whose status this batch changed, for `humbex_orders_total` (its `origin` column) and,
/// for HUMBEX's own orders, `humbex_order_to_fill_seconds` (the row's age). docs/metrics.md.
#[derive(Debug)]
pub(super) struct Reached {
    pub origin: String,
    pub status: String,
    pub age_seconds: Option<f64>,
}

/// An order row that reconciliation looks up by orderLinkId.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOrder {
    pub id: Uuid,
    pub api_key_id: Uuid,
    pub order_link_id: String,
    pub symbol: String,
    pub status: String,
}

/// One exchange event for [`apply_batch`].
#[derive(Debug, Clone)]
pub enum Event {
    Order(Order),
    Execution(Execution),
    Position(Position),
}

/// What one event of a batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The order row afterwards; `None` when no row of that account has the orderLinkId (or the
    /// status is not understood).
    Order(Option<AppliedOrder>),
    /// The fill's order id when this event inserted the row; `None` when it was already recorded
    /// (earlier, or by an earlier event of this batch), is not ours, or was skipped.
    Fill(Option<Uuid>),
    /// The account's break-even watch on the position's symbol, when one may still fire (and the
    /// push was not older than the row).
    Position(Option<Armed>),
}

/// Order updates of one statement: parallel arrays, one entry per update.
#[derive(Default)]
struct OrderColumns<'a> {
    idx: Vec<i32>,
    link_id: Vec<&'a str>,
    key_id: Vec<Uuid>,
    status: Vec<&'static str>,
    rank: Vec<i32>,
    cum_qty: Vec<Decimal>,
    avg: Vec<Option<Decimal>>,
    fee: Vec<Option<Decimal>>,
    xid: Vec<&'a str>,
    xtime: Vec<Option<DateTime<Utc>>>,
    reason: Vec<&'a str>,
    closed_pnl: Vec<Option<Decimal>>,
}

#[derive(Default)]
struct FillColumns<'a> {
    exec_id: Vec<&'a str>,
    qty: Vec<Decimal>,
    price: Vec<Decimal>,
    fee: Vec<Decimal>,
    exec_time: Vec<DateTime<Utc>>,
    link_id: Vec<&'a str>,
    key_id: Vec<Uuid>,
}

/// Writes a batch of events (each with its account's api key id) in one transaction: the fills
/// first, then the order updates, an order's n-th update of the batch in the n-th statement so
/// that they apply in the order they came, exactly as one by one. Either every event is written
/// or none (the caller retries them one at a time to isolate a bad one).
#[tracing::instrument(skip_all, fields(events = events.len()))]
pub async fn apply_batch(
    client: &mut deadpool_postgres::Client,
    events: &[(Uuid, &Event)],
) -> Result<Vec<Outcome>, tokio_postgres::Error> {
    let mut outcomes: Vec<Outcome> = events
        .iter()
        .map(|(_, event)| match event {
            Event::Order(_) => Outcome::Order(None),
            Event::Execution(_) => Outcome::Fill(None),
            Event::Position(_) => Outcome::Position(None),
        })
        .collect();
    let mut fills = FillColumns::default();
    // exec id -> the event that may insert it (the first of the batch).
    let mut fill_event: HashMap<&str, usize> = HashMap::new();
    let mut rounds: Vec<OrderColumns> = Vec::new();
    let mut updates_of: HashMap<(Uuid, &str), usize> = HashMap::new();
    // Orders and fills without an orderLinkId are never HUMBEX's: recorded by `foreign`, one by one
    // and in the order they came together with the positions, because a foreign order is
    // attributed to the signal its position records as the opener (a liquidation queued right
    // behind the push that opened the position must see it).
    let mut one_by_one: Vec<usize> = Vec::new();
    let mut positions = 0;
    for (i, (api_key_id, event)) in events.iter().enumerate() {
        match event {
            Event::Position(_) => {
                positions += 1;
                one_by_one.push(i);
            }
            Event::Order(order) if order.order_link_id.is_empty() => one_by_one.push(i),
            Event::Execution(fill) if fill.order_link_id.is_empty() => one_by_one.push(i),
            Event::Execution(execution) => {
                let Some(exec_time) = DateTime::<Utc>::from_timestamp_millis(execution.exec_time) else {
                    tracing::warn!(exec_id = %execution.exec_id, exec_time = execution.exec_time, "fill with an impossible execTime; skipped");
                    continue;
                };
                if fill_event.contains_key(execution.exec_id.as_str()) {
                    continue;
                }
                fill_event.insert(&execution.exec_id, i);
                fills.exec_id.push(&execution.exec_id);
                fills.qty.push(execution.exec_qty);
                fills.price.push(execution.exec_price);
                fills.fee.push(execution.exec_fee.unwrap_or(Decimal::ZERO));
                fills.exec_time.push(exec_time);
                fills.link_id.push(&execution.order_link_id);
                fills.key_id.push(*api_key_id);
            }
            Event::Order(order) => {
                let Some((status, rank)) = row_status(order.order_status) else {
                    tracing::warn!(order_link_id = %order.order_link_id, status = ?order.order_status, "order status not understood; left for reconciliation");
                    continue;
                };
                let seen = updates_of
                    .entry((*api_key_id, order.order_link_id.as_str()))
                    .or_insert(0);
                if rounds.len() <= *seen {
                    rounds.push(OrderColumns::default());
                }
                let round = &mut rounds[*seen];
                *seen += 1;
                // Bybit deprecates cumExecFee for linear in favour of cumFeeDetail; take either.
                let fee = order
                    .cum_exec_fee
                    .or_else(|| order.cum_fee_detail.get("USDT").copied());
                round
                    .idx
                    .push(i32::try_from(i).expect("batch far below i32::MAX"));
                round.link_id.push(&order.order_link_id);
                round.key_id.push(*api_key_id);
                round.status.push(status);
                round.rank.push(rank);
                round.cum_qty.push(order.cum_exec_qty);
                round.avg.push(order.avg_price);
                round.fee.push(fee);
                round.xid.push(&order.order_id);
                round.xtime.push(
                    order
                        .updated_time
                        .and_then(DateTime::<Utc>::from_timestamp_millis),
                );
                round.reason.push(&order.reject_reason);
                round.closed_pnl.push(order.closed_pnl);
            }
        }
    }
    // Orders that changed status in this batch, counted once the transaction commits.
    let mut reached: Vec<Reached> = Vec::new();
    // A batch of positions only commits without the WAL flush (see `positions::UPSERT`).
    let unflushed = positions == events.len();
    let tx = client.transaction().await?;
    for &i in &one_by_one {
        let (api_key_id, event) = &events[i];
        outcomes[i] = match event {
            Event::Order(order) => {
                let recorded = foreign::upsert_order(&tx, *api_key_id, order).await?;
                Outcome::Order(recorded.map(|r| r.applied(&mut reached)))
            }
            Event::Execution(fill) => {
                foreign::record_fill(&tx, *api_key_id, fill).await?;
                Outcome::Fill(None)
            }
            Event::Position(position) => {
                Outcome::Position(foreign::upsert_position(&tx, *api_key_id, position, unflushed).await?)
            }
        };
    }
    if !fills.exec_id.is_empty() {
        let rows = tx
            .rows(
                fills::INSERT,
                &[
                    &fills.exec_id,
                    &fills.qty,
                    &fills.price,
                    &fills.fee,
                    &fills.exec_time,
                    &fills.link_id,
                    &fills.key_id,
                ],
            )
            .await?;
        for row in rows {
            let exec_id: &str = row.get("exec_id");
            if let Some(&i) = fill_event.get(exec_id) {
                outcomes[i] = Outcome::Fill(Some(row.get("order_id")));
            }
        }
    }
    if !rounds.is_empty() {
        // Lock the batch's order rows in id order before updating them: the settle writer locks
        // the same way, and the join order of `UPDATE … FROM unnest` is the planner's, so without
        // this two writers could each hold a row the other needs. One order alone cannot be half
        // of such a cycle (this transaction holds no other row lock that settle takes: a fill's
        // insert takes only KEY SHARE), so the common batch of one order skips the round trip.
        if updates_of.len() > 1 {
            let (links, keys): (Vec<&str>, Vec<Uuid>) = rounds
                .iter()
                .flat_map(|r| r.link_id.iter().copied().zip(r.key_id.iter().copied()))
                .unzip();
            tx.run(orders::LOCK_BY_LINK, &[&links, &keys]).await?;
        }
        for round in &rounds {
            let rows = tx
                .rows(
                    &orders::APPLY_UPDATES,
                    &[
                        &round.idx,
                        &round.link_id,
                        &round.key_id,
                        &round.status,
                        &round.rank,
                        &round.cum_qty,
                        &round.avg,
                        &round.fee,
                        &round.xid,
                        &round.xtime,
                        &round.reason,
                        &round.closed_pnl,
                    ],
                )
                .await?;
            for row in rows {
                let i: i32 = row.get("idx");
                let order_id: Uuid = row.get("id");
                let needs_protection: Option<bool> = row.get("needs_protection");
                let protect = match (
                    needs_protection,
                    row.get::<_, Option<Uuid>>("signal_id"),
                    row.get("avg_price"),
                ) {
                    (Some(true), Some(signal_id), Some(avg_price)) => Some(ProtectJob {
                        order_id,
                        api_key_id: events[i as usize].0,
                        signal_id,
                        symbol: row.get("symbol"),
                        buy: row.get::<_, &str>("side") == "buy",
                        avg_price,
                    }),
                    _ => None,
                };
                let status: String = row.get("status");
                let previous: String = row.get("previous_status");
                if status != previous {
                    let origin: String = row.get("origin");
                    let age_seconds = (origin == "signal").then(|| row.get("age_seconds"));
                    reached.push(Reached {
                        origin,
                        status: status.clone(),
                        age_seconds,
                    });
                }
                outcomes[i as usize] = Outcome::Order(Some(AppliedOrder {
                    order_id,
                    status,
                    protect,
                }));
            }
        }
    }
    // A link id that is not HUMBEX's form and matched no row: an order the user placed over the
    // API with an id of their own.
    for (i, (api_key_id, event)) in events.iter().enumerate() {
        if let (Event::Order(order), Outcome::Order(None)) = (event, &outcomes[i])
            && !order.order_link_id.is_empty()
            && !foreign::is_ours(&order.order_link_id)
        {
            let recorded = foreign::upsert_order(&tx, *api_key_id, order).await?;
            outcomes[i] = Outcome::Order(recorded.map(|r| r.applied(&mut reached)));
        }
    }
    tx.commit().await?;
    // Counted once committed, and only on a change: a repeated push of a final state moves nothing.
    let metrics = humbex_shared::metrics::metrics();
    for r in reached {
        // Only HUMBEX's own orders are timed: a row for a foreign order is created when its first
        // push arrives, not when it was placed.
        if r.status == order_status::FILLED
            && let Some(age_seconds) = r.age_seconds
        {
            metrics.order_to_fill(std::time::Duration::from_secs_f64(age_seconds.max(0.0)));
        }
        metrics.order(&r.origin, &r.status);
    }
    Ok(outcomes)
}

fn open_order(row: &tokio_postgres::Row) -> OpenOrder {
    OpenOrder {
        id: row.get("id"),
        api_key_id: row.get("api_key_id"),
        order_link_id: row.get("order_link_id"),
        symbol: row.get("symbol"),
        status: row.get("status"),
    }
}

#[tracing::instrument(skip_all, fields(%api_key_id))]
pub async fn open_orders_of_account(
    client: &impl Statements,
    api_key_id: Uuid,
) -> Result<Vec<OpenOrder>, tokio_postgres::Error> {
    let rows = client.rows(&orders::OPEN_OF_ACCOUNT, &[&api_key_id]).await?;
    Ok(rows.iter().map(open_order).collect())
}

#[tracing::instrument(skip_all, fields(accounts = api_key_ids.len()))]
pub async fn unconfirmed_orders(
    client: &impl Statements,
    api_key_ids: &[Uuid],
    older_than: std::time::Duration,
    limit: i64,
) -> Result<Vec<OpenOrder>, tokio_postgres::Error> {
    let rows = client
        .rows(
            orders::UNCONFIRMED,
            &[&api_key_ids, &older_than.as_secs_f64(), &limit],
        )
        .await?;
    Ok(rows.iter().map(open_order).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_statuses_map_to_row_statuses_with_ranks() {
        assert_eq!(row_status(OrderStatus::New), Some(("new", 2)));
        assert_eq!(
            row_status(OrderStatus::PartiallyFilled),
            Some(("partially_filled", 3))
        );
        assert_eq!(row_status(OrderStatus::Filled), Some(("filled", 4)));
        assert_eq!(row_status(OrderStatus::Cancelled), Some(("cancelled", 4)));
        assert_eq!(row_status(OrderStatus::Deactivated), Some(("cancelled", 4)));
        assert_eq!(row_status(OrderStatus::Rejected), Some(("rejected", 4)));
        assert_eq!(row_status(OrderStatus::Unknown), None);
    }
}
