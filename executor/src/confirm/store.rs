//! SQL of fill confirmation: apply exchange order states and fills to the `orders`/`fills` rows
//! (a whole batch in one transaction, one multi-row statement per kind), find the orders to
//! reconcile, disable keys.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use humbex_bybit::{Execution, Order, OrderStatus};
use rust_decimal::Decimal;
use uuid::Uuid;

/// The row status an exchange status maps to, with its rank: a row only ever moves to an equal or
/// higher rank, so a late or replayed `New` cannot undo a `Filled` seen earlier. `None` for states
/// this pipeline never produces (conditional orders, unknown values): those change nothing and
/// the order is re-checked by reconciliation.
pub fn row_status(status: OrderStatus) -> Option<(&'static str, i32)> {
    match status {
        OrderStatus::New | OrderStatus::Untriggered | OrderStatus::Triggered => Some(("new", 2)),
        OrderStatus::PartiallyFilled => Some(("partially_filled", 3)),
        OrderStatus::Filled => Some(("filled", 4)),
        OrderStatus::Cancelled | OrderStatus::Deactivated | OrderStatus::PartiallyFilledCanceled => {
            Some(("cancelled", 4))
        }
        OrderStatus::Rejected => Some(("rejected", 4)),
        OrderStatus::Unknown => None,
    }
}

// Written out in SQL (not a function in a migration) so the statement needs nothing beyond V2.
const IS_OPEN: &str = "o.status IN ('pending', 'submitted', 'new', 'partially_filled')";
const RANK: &str = "(CASE o.status WHEN 'pending' THEN 0 WHEN 'submitted' THEN 1 WHEN 'new' THEN 2 \
                    WHEN 'partially_filled' THEN 3 ELSE 4 END)";

/// One row of `u` per order update: `u.idx` its place in the batch, `u.link_id`, `u.key_id`,
/// `u.status` with its rank `u.rnk`, `u.cum_qty` (cumExecQty), `u.avg`, `u.fee`, `u.xid` (exchange
/// order id), `u.xtime` (exchange update time), `u.reason` (reject reason). No two rows of one
/// statement may name the same order (PostgreSQL would apply only one of them): the batch writer
/// sends an order's second update in the next statement of the same transaction.
///
/// Every assignment is guarded by the row being open, so a terminal row is frozen; numbers follow
/// only a cumulative quantity that did not go down, so an older snapshot never overwrites a newer
/// one. Because the guards read the row being updated, a concurrent writer is re-checked by
/// PostgreSQL's READ COMMITTED re-evaluation instead of needing a SELECT ... FOR UPDATE first.
static APPLY_ORDERS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE orders o SET \
            status = CASE WHEN {IS_OPEN} AND u.rnk >= {RANK} THEN u.status ELSE o.status END, \
            filled_qty = CASE WHEN {IS_OPEN} AND u.cum_qty > o.filled_qty THEN u.cum_qty ELSE o.filled_qty END, \
            avg_price = CASE WHEN {IS_OPEN} AND u.cum_qty >= o.filled_qty THEN COALESCE(u.avg, o.avg_price) \
                        ELSE o.avg_price END, \
            fee = CASE WHEN {IS_OPEN} AND u.cum_qty >= o.filled_qty THEN COALESCE(u.fee, o.fee) ELSE o.fee END, \
            exchange_order_id = CASE WHEN {IS_OPEN} THEN COALESCE(o.exchange_order_id, u.xid) \
                                ELSE o.exchange_order_id END, \
            acknowledged_at = CASE WHEN {IS_OPEN} THEN COALESCE(o.acknowledged_at, now()) \
                              ELSE o.acknowledged_at END, \
            filled_at = CASE WHEN {IS_OPEN} AND u.status = 'filled' THEN COALESCE(o.filled_at, u.xtime, now()) \
                        ELSE o.filled_at END, \
            error_code = CASE WHEN {IS_OPEN} AND u.status = 'rejected' THEN u.reason ELSE o.error_code END, \
            error = CASE WHEN {IS_OPEN} AND u.status = 'rejected' THEN 'rejected by the exchange: ' || u.reason \
                    ELSE o.error END, \
            updated_at = now() \
         FROM unnest($1::int4[], $2::text[], $3::uuid[], $4::text[], $5::int4[], $6::numeric[], \
                     $7::numeric[], $8::numeric[], $9::text[], $10::timestamptz[], $11::text[]) \
              AS u(idx, link_id, key_id, status, rnk, cum_qty, avg, fee, xid, xtime, reason) \
         WHERE o.order_link_id = u.link_id AND o.api_key_id = u.key_id \
         RETURNING u.idx, o.id, o.status"
    )
});

const LOCK_ORDERS: &str = "\
    SELECT o.id FROM orders o \
    JOIN unnest($1::text[], $2::uuid[]) AS u(link_id, key_id) \
      ON o.order_link_id = u.link_id AND o.api_key_id = u.key_id \
    ORDER BY o.id FOR NO KEY UPDATE OF o";

/// A fill whose order is not ours joins nothing and is not inserted; one already recorded (also
/// earlier in the same statement) is skipped by its exec id.
const INSERT_FILLS: &str = "\
    INSERT INTO fills (exec_id, order_id, qty, price, fee, exec_time) \
    SELECT u.exec_id, o.id, u.qty, u.price, u.fee, u.exec_time \
    FROM unnest($1::text[], $2::numeric[], $3::numeric[], $4::numeric[], $5::timestamptz[], \
                $6::text[], $7::uuid[]) AS u(exec_id, qty, price, fee, exec_time, link_id, key_id) \
    JOIN orders o ON o.order_link_id = u.link_id AND o.api_key_id = u.key_id \
    ON CONFLICT (exec_id) DO NOTHING \
    RETURNING exec_id, order_id";

const OPEN_ORDERS_OF_ACCOUNT: &str = "\
    SELECT id, api_key_id, order_link_id, symbol, status FROM orders \
    WHERE api_key_id = $1 AND status IN ('pending', 'submitted', 'new', 'partially_filled') \
    ORDER BY created_at";

// pending/submitted age from submission (or creation); new/partially_filled from their last
// change, so a market order whose terminal push was lost is still found. A filled order whose fill
// rows do not add up to its filled quantity (its execution push was lost after the order push) is
// looked up too, for an hour, so its fills are fetched over REST.
const UNCONFIRMED: &str = "\
    SELECT id, api_key_id, order_link_id, symbol, status FROM orders \
    WHERE api_key_id = ANY($1) \
      AND ((status IN ('pending', 'submitted') \
            AND COALESCE(submitted_at, created_at) < now() - make_interval(secs => $2)) \
        OR (status IN ('new', 'partially_filled') AND updated_at < now() - make_interval(secs => $2)) \
        OR (status IN ('filled', 'cancelled') AND filled_qty > 0 \
            AND updated_at < now() - make_interval(secs => $2) AND updated_at > now() - interval '1 hour' \
            AND filled_qty > COALESCE((SELECT sum(f.qty) FROM fills f WHERE f.order_id = orders.id), 0))) \
    ORDER BY created_at \
    LIMIT $3";

/// What an exchange order state did to our row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedOrder {
    pub order_id: Uuid,
    /// The row's status afterwards (unchanged when the update was older than the row).
    pub status: String,
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
        })
        .collect();
    let mut fills = FillColumns::default();
    // exec id -> the event that may insert it (the first of the batch).
    let mut fill_event: HashMap<&str, usize> = HashMap::new();
    let mut rounds: Vec<OrderColumns> = Vec::new();
    let mut updates_of: HashMap<(Uuid, &str), usize> = HashMap::new();
    for (i, (api_key_id, event)) in events.iter().enumerate() {
        match event {
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
            }
        }
    }
    let tx = client.transaction().await?;
    if !fills.exec_id.is_empty() {
        let stmt = tx.prepare_cached(INSERT_FILLS).await?;
        let rows = tx
            .query(
                &stmt,
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
            let exec_id: &str = row.get(0);
            if let Some(&i) = fill_event.get(exec_id) {
                outcomes[i] = Outcome::Fill(Some(row.get(1)));
            }
        }
    }
    if !rounds.is_empty() {
        // Lock the batch's order rows in id order before updating them: the settle writer locks
        // the same way, and the join order of `UPDATE … FROM unnest` is the planner's, so without
        // this two writers could each hold a row the other needs.
        let lock = tx.prepare_cached(LOCK_ORDERS).await?;
        let (links, keys): (Vec<&str>, Vec<Uuid>) = rounds
            .iter()
            .flat_map(|r| r.link_id.iter().copied().zip(r.key_id.iter().copied()))
            .unzip();
        tx.execute(&lock, &[&links, &keys]).await?;
        let stmt = tx.prepare_cached(&APPLY_ORDERS).await?;
        for round in &rounds {
            let rows = tx
                .query(
                    &stmt,
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
                    ],
                )
                .await?;
            for row in rows {
                let i: i32 = row.get(0);
                outcomes[i as usize] = Outcome::Order(Some(AppliedOrder {
                    order_id: row.get(1),
                    status: row.get(2),
                }));
            }
        }
    }
    tx.commit().await?;
    Ok(outcomes)
}

fn open_order(row: &tokio_postgres::Row) -> OpenOrder {
    OpenOrder {
        id: row.get(0),
        api_key_id: row.get(1),
        order_link_id: row.get(2),
        symbol: row.get(3),
        status: row.get(4),
    }
}

#[tracing::instrument(skip_all, fields(%api_key_id))]
pub async fn open_orders_of_account(
    client: &impl GenericClient,
    api_key_id: Uuid,
) -> Result<Vec<OpenOrder>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(OPEN_ORDERS_OF_ACCOUNT).await?;
    let rows = client.query(&stmt, &[&api_key_id]).await?;
    Ok(rows.iter().map(open_order).collect())
}

#[tracing::instrument(skip_all, fields(accounts = api_key_ids.len()))]
pub async fn unconfirmed_orders(
    client: &impl GenericClient,
    api_key_ids: &[Uuid],
    older_than: std::time::Duration,
    limit: i64,
) -> Result<Vec<OpenOrder>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(UNCONFIRMED).await?;
    let rows = client
        .query(&stmt, &[&api_key_ids, &older_than.as_secs_f64(), &limit])
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
