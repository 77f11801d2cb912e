//! Orders HUMBEX did not place (no orderLinkId of ours): the TP, SL, trailing, liquidation and ADL
//! orders Bybit creates, and orders the user places by hand. They are recorded with an `origin`
//! from Bybit's `createType`, with their fills and closed PnL, on the account they happened on and
//! linked to the signal that opened the position when known; and the `position` topic keeps the
//! `positions` table (docs/trading-v2-executor.md#recording).

use chrono::{DateTime, Utc};
use humbex_bybit::{CreateType, Execution, Order, Position, Side};
use humbex_shared::db::Statements;
use humbex_shared::domain::order_status;
use humbex_shared::store::{fills, orders, positions};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::store::{AppliedOrder, Reached, row_status};
use crate::trade::break_even::Armed;

/// A foreign order's row after a push: its id, status and origin, and whether the push changed
/// its status (a new row counts as changed).
#[derive(Debug)]
pub struct Recorded {
    order_id: Uuid,
    status: String,
    origin: String,
    changed: bool,
}

impl Recorded {
    /// The outcome for the push; a change of status is noted in `reached` for the metrics.
    pub(super) fn applied(self, reached: &mut Vec<Reached>) -> AppliedOrder {
        if self.changed {
            reached.push(Reached {
                origin: self.origin,
                status: self.status.clone(),
                age_seconds: None,
            });
        }
        AppliedOrder {
            order_id: self.order_id,
            status: self.status,
            protect: None,
        }
    }
}

/// Whether an orderLinkId is certainly one HUMBEX gave (`hbx-` and the row id:
/// [`crate::orders::order_link_id`]). An empty one is certainly not; any other is looked up as
/// ours first and recorded as foreign when no row has it.
pub fn is_ours(order_link_id: &str) -> bool {
    order_link_id.starts_with("hbx-")
}

/// The `origin` of an order HUMBEX did not place. `stop_order_type` tells a partial TP/SL apart;
/// anything the user did (the app's close button included) is `manual`.
pub fn origin(create_type: Option<CreateType>, stop_order_type: &str) -> &'static str {
    match create_type {
        Some(CreateType::CreateByTakeProfit | CreateType::CreateByPartialTakeProfit) => "take_profit",
        Some(CreateType::CreateByStopLoss | CreateType::CreateByPartialStopLoss) => "stop_loss",
        Some(CreateType::CreateByTrailingStop) => "trailing_stop",
        Some(CreateType::CreateByLiq | CreateType::CreateByTakeOverPassThrough) => "liquidation",
        Some(CreateType::CreateByAdlPassThrough) => "adl",
        _ => match stop_order_type {
            "TakeProfit" | "PartialTakeProfit" => "take_profit",
            "StopLoss" | "PartialStopLoss" => "stop_loss",
            "TrailingStop" => "trailing_stop",
            _ => "manual",
        },
    }
}

fn side(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// Record or move forward a foreign order from its push; `None` when the status is not understood.
#[tracing::instrument(skip_all, fields(%api_key_id, order_id = %order.order_id))]
pub async fn upsert_order(
    client: &impl Statements,
    api_key_id: Uuid,
    order: &Order,
) -> Result<Option<Recorded>, tokio_postgres::Error> {
    let Some((status, rank)) = row_status(order.order_status) else {
        return Ok(None);
    };
    let fee = order
        .cum_exec_fee
        .or_else(|| order.cum_fee_detail.get("USDT").copied());
    let order_type = match order.order_type {
        humbex_bybit::OrderType::Limit => "limit",
        _ => "market",
    };
    let filled_at = order
        .updated_time
        .and_then(DateTime::<Utc>::from_timestamp_millis);
    upsert(
        client,
        api_key_id,
        &order.order_id,
        origin(order.create_type, &order.stop_order_type),
        &order.symbol,
        side(order.side),
        order.qty,
        order_type,
        (status, rank),
        order.cum_exec_qty,
        order.avg_price,
        fee,
        order.closed_pnl,
        order.trigger_price,
        filled_at,
        order.reduce_only,
    )
    .await
}

/// A fill may arrive before its order's push: the row is written from the fill (as `new`, nothing
/// filled yet, so the order push still moves it), then the fill is recorded against it.
#[tracing::instrument(skip_all, fields(%api_key_id, exec_id = %fill.exec_id))]
pub async fn record_fill(
    client: &impl Statements,
    api_key_id: Uuid,
    fill: &Execution,
) -> Result<bool, tokio_postgres::Error> {
    let Some(exec_time) = DateTime::<Utc>::from_timestamp_millis(fill.exec_time) else {
        return Ok(false);
    };
    upsert(
        client,
        api_key_id,
        &fill.order_id,
        origin(fill.create_type, &fill.stop_order_type),
        &fill.symbol,
        side(fill.side),
        fill.exec_qty,
        "market",
        (order_status::NEW, order_status::rank(order_status::NEW)),
        Decimal::ZERO,
        None,
        None,
        None,
        None,
        None,
        fill.closed_size.is_some_and(|s| s > Decimal::ZERO),
    )
    .await?;
    let rows = client
        .rows(
            fills::INSERT_FOREIGN,
            &[
                &vec![fill.exec_id.as_str()],
                &vec![fill.exec_qty],
                &vec![fill.exec_price],
                &vec![fill.exec_fee.unwrap_or(Decimal::ZERO)],
                &vec![exec_time],
                &vec![fill.order_id.as_str()],
                &vec![api_key_id],
            ],
        )
        .await?;
    Ok(!rows.is_empty())
}

#[allow(clippy::too_many_arguments)]
async fn upsert(
    client: &impl Statements,
    api_key_id: Uuid,
    exchange_order_id: &str,
    origin: &str,
    symbol: &str,
    side: &str,
    qty: Decimal,
    order_type: &str,
    (status, rank): (&str, i32),
    cum_qty: Decimal,
    avg: Option<Decimal>,
    fee: Option<Decimal>,
    closed_pnl: Option<Decimal>,
    trigger_price: Option<Decimal>,
    exchange_time: Option<DateTime<Utc>>,
    reduce_only: bool,
) -> Result<Option<Recorded>, tokio_postgres::Error> {
    let row = client
        .row_opt(
            &orders::UPSERT_FOREIGN,
            &[
                &api_key_id,
                &exchange_order_id,
                &origin,
                &symbol,
                &side,
                &qty,
                &order_type,
                &status,
                &rank,
                &cum_qty,
                &avg,
                &fee,
                &closed_pnl,
                &trigger_price,
                &exchange_time,
                &reduce_only,
                &Uuid::now_v7(),
            ],
        )
        .await?;
    Ok(row.map(|r| {
        let status: String = r.get("status");
        let previous: Option<String> = r.get("previous_status");
        Recorded {
            order_id: r.get("id"),
            changed: previous.as_deref() != Some(status.as_str()),
            status,
            origin: r.get("origin"),
        }
    }))
}

/// Keep the account's row for the position's symbol (one-way mode: one per symbol), answering the
/// break-even watch on it that may still fire. `unflushed`: the transaction holds positions only
/// (see `positions::UPSERT`).
#[tracing::instrument(skip_all, fields(%api_key_id, symbol = %position.symbol))]
pub async fn upsert_position(
    client: &impl Statements,
    api_key_id: Uuid,
    position: &Position,
    unflushed: bool,
) -> Result<Option<Armed>, tokio_postgres::Error> {
    let side = match position.side {
        Some(s) if position.size > Decimal::ZERO => side(s),
        _ => "none",
    };
    let row = client
        .row_opt(
            &positions::UPSERT,
            &[
                &api_key_id,
                &position.symbol,
                &side,
                &position.size,
                &position.avg_price,
                &position.mark_price,
                &position.unrealised_pnl,
                &position.leverage,
                &position.take_profit,
                &position.stop_loss,
                &position.trailing_stop,
                &position.seq,
                &unflushed,
            ],
        )
        .await?;
    Ok(row.as_ref().and_then(crate::break_even::watch_of))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_follows_create_type_then_stop_order_type() {
        assert_eq!(origin(Some(CreateType::CreateByTakeProfit), ""), "take_profit");
        assert_eq!(origin(Some(CreateType::CreateByPartialStopLoss), ""), "stop_loss");
        assert_eq!(
            origin(Some(CreateType::CreateByTrailingStop), ""),
            "trailing_stop"
        );
        assert_eq!(origin(Some(CreateType::CreateByLiq), ""), "liquidation");
        assert_eq!(
            origin(Some(CreateType::CreateByTakeOverPassThrough), ""),
            "liquidation"
        );
        assert_eq!(origin(Some(CreateType::CreateByAdlPassThrough), ""), "adl");
        assert_eq!(origin(Some(CreateType::CreateByUser), ""), "manual");
        assert_eq!(origin(Some(CreateType::CreateByClosing), ""), "manual");
        assert_eq!(origin(None, "StopLoss"), "stop_loss");
        assert_eq!(origin(Some(CreateType::Unknown), "TrailingStop"), "trailing_stop");
        assert_eq!(origin(None, ""), "manual");
        assert!(is_ours("hbx-0123") && !is_ours("") && !is_ours("my-own-id"));
    }
}
