//! SQL of fill confirmation: apply an exchange order state or fill to the `orders`/`fills` rows
//! (one prepared statement, one round trip each), find the orders to reconcile, disable keys.

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

/// $1 order_link_id, $2 api_key_id, $3 status, $4 its rank, $5 cumExecQty, $6 avgPrice, $7 fee,
/// $8 exchange order id, $9 exchange update time, $10 reject reason.
///
/// Every assignment is guarded by the row being open, so a terminal row is frozen; numbers follow
/// only a cumulative quantity that did not go down, so an older snapshot never overwrites a newer
/// one. Because the guards read the row being updated, a concurrent writer is re-checked by
/// PostgreSQL's READ COMMITTED re-evaluation instead of needing a SELECT ... FOR UPDATE first.
static APPLY_ORDER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE orders o SET \
            status = CASE WHEN {IS_OPEN} AND $4::int4 >= {RANK} THEN $3::text ELSE o.status END, \
            filled_qty = CASE WHEN {IS_OPEN} AND $5::numeric > o.filled_qty THEN $5 ELSE o.filled_qty END, \
            avg_price = CASE WHEN {IS_OPEN} AND $5 >= o.filled_qty THEN COALESCE($6::numeric, o.avg_price) \
                        ELSE o.avg_price END, \
            fee = CASE WHEN {IS_OPEN} AND $5 >= o.filled_qty THEN COALESCE($7::numeric, o.fee) ELSE o.fee END, \
            exchange_order_id = CASE WHEN {IS_OPEN} THEN COALESCE(o.exchange_order_id, $8::text) \
                                ELSE o.exchange_order_id END, \
            acknowledged_at = CASE WHEN {IS_OPEN} THEN COALESCE(o.acknowledged_at, now()) \
                              ELSE o.acknowledged_at END, \
            filled_at = CASE WHEN {IS_OPEN} AND $3 = 'filled' THEN COALESCE(o.filled_at, $9::timestamptz, now()) \
                        ELSE o.filled_at END, \
            error_code = CASE WHEN {IS_OPEN} AND $3 = 'rejected' THEN $10::text ELSE o.error_code END, \
            error = CASE WHEN {IS_OPEN} AND $3 = 'rejected' THEN 'rejected by the exchange: ' || $10 \
                    ELSE o.error END, \
            updated_at = now() \
         WHERE o.order_link_id = $1 AND o.api_key_id = $2 \
         RETURNING o.id, o.status"
    )
});

const INSERT_FILL: &str = "\
    INSERT INTO fills (exec_id, order_id, qty, price, fee, exec_time) \
    SELECT $1, o.id, $2, $3, $4, $5 FROM orders o WHERE o.order_link_id = $6 AND o.api_key_id = $7 \
    ON CONFLICT (exec_id) DO NOTHING \
    RETURNING order_id";

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

const MARK_UNUSABLE: &str = "\
    UPDATE api_keys SET unusable_reason = $2, unusable_at = now() \
    WHERE id = $1 AND unusable_at IS NULL";

const KEY_STATE: &str = "SELECT unusable_reason, unusable_at IS NOT NULL, revoked_at IS NOT NULL \
                         FROM api_keys WHERE id = $1";

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

#[tracing::instrument(skip_all, fields(order_link_id = %order.order_link_id, %api_key_id))]
pub async fn apply_order(
    client: &impl GenericClient,
    api_key_id: Uuid,
    order: &Order,
) -> Result<Option<AppliedOrder>, tokio_postgres::Error> {
    let Some((status, rank)) = row_status(order.order_status) else {
        tracing::warn!(status = ?order.order_status, "order status not understood; left for reconciliation");
        return Ok(None);
    };
    // Bybit deprecates cumExecFee for linear in favour of cumFeeDetail; take either.
    let fee = order
        .cum_exec_fee
        .or_else(|| order.cum_fee_detail.get("USDT").copied());
    let updated_at = order
        .updated_time
        .and_then(DateTime::<Utc>::from_timestamp_millis);
    let stmt = client.prepare_cached(&APPLY_ORDER).await?;
    let row = client
        .query_opt(
            &stmt,
            &[
                &order.order_link_id,
                &api_key_id,
                &status,
                &rank,
                &order.cum_exec_qty,
                &order.avg_price,
                &fee,
                &order.order_id,
                &updated_at,
                &order.reject_reason,
            ],
        )
        .await?;
    Ok(row.map(|r| AppliedOrder {
        order_id: r.get(0),
        status: r.get(1),
    }))
}

/// Inserts one fill; `Ok(None)` when it was already recorded or the order is not ours.
#[tracing::instrument(skip_all, fields(order_link_id = %execution.order_link_id, exec_id = %execution.exec_id, %api_key_id))]
pub async fn insert_fill(
    client: &impl GenericClient,
    api_key_id: Uuid,
    execution: &Execution,
) -> Result<Option<Uuid>, tokio_postgres::Error> {
    let Some(exec_time) = DateTime::<Utc>::from_timestamp_millis(execution.exec_time) else {
        tracing::warn!(
            exec_time = execution.exec_time,
            "fill with an impossible execTime; skipped"
        );
        return Ok(None);
    };
    let fee = execution.exec_fee.unwrap_or(Decimal::ZERO);
    let stmt = client.prepare_cached(INSERT_FILL).await?;
    let row = client
        .query_opt(
            &stmt,
            &[
                &execution.exec_id,
                &execution.exec_qty,
                &execution.exec_price,
                &fee,
                &exec_time,
                &execution.order_link_id,
                &api_key_id,
            ],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
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

/// Returns false when the key was already marked (the first reason is kept).
#[tracing::instrument(skip_all, fields(%api_key_id))]
pub async fn mark_key_unusable(
    client: &impl GenericClient,
    api_key_id: Uuid,
    reason: &str,
) -> Result<bool, tokio_postgres::Error> {
    let stmt = client.prepare_cached(MARK_UNUSABLE).await?;
    Ok(client.execute(&stmt, &[&api_key_id, &reason]).await? == 1)
}

/// Why the key must not be used, or `None` when it may be.
#[tracing::instrument(skip_all, fields(%api_key_id))]
pub async fn key_refusal(
    client: &impl GenericClient,
    api_key_id: Uuid,
) -> Result<Option<String>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(KEY_STATE).await?;
    let Some(row) = client.query_opt(&stmt, &[&api_key_id]).await? else {
        return Ok(Some("no such api key".into()));
    };
    let reason: Option<String> = row.get(0);
    if row.get::<_, bool>(1) {
        return Ok(Some(format!(
            "marked unusable: {}",
            reason.unwrap_or_else(|| "no reason recorded".into())
        )));
    }
    if row.get::<_, bool>(2) {
        return Ok(Some("revoked".into()));
    }
    Ok(None)
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
