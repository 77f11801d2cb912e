//! The records an account keeps: orders and their fills (executions).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use super::{CreateType, OrderStatus, OrderType, Side, TimeInForce};

/// One order as the paper exchange keeps it; also the control API's view (snake_case).
#[derive(Clone, Debug, Serialize)]
pub struct Order {
    pub order_id: String,
    pub order_link_id: String,
    pub symbol: String,
    pub side: Side,
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    pub qty: Decimal,
    /// The limit price, or for market orders the protective price Bybit reports.
    pub price: Decimal,
    pub position_idx: u8,
    pub reduce_only: bool,
    pub close_on_trigger: bool,
    pub status: OrderStatus,
    pub cum_exec_qty: Decimal,
    pub cum_exec_value: Decimal,
    pub cum_exec_fee: Decimal,
    pub avg_price: Option<Decimal>,
    pub last_price_on_created: Decimal,
    pub cancel_type: &'static str,
    pub reject_reason: &'static str,
    pub create_type: CreateType,
    /// A conditional order's trigger: price, direction (1 rises to it, 2 falls to it) and price kind.
    pub trigger_price: Option<Decimal>,
    pub trigger_direction: u8,
    pub trigger_by: Option<String>,
    /// Order-attached take profit and stop loss (tpslMode Full): set on the position when it fills.
    pub take_profit: Option<Decimal>,
    pub stop_loss: Option<Decimal>,
    /// Realised PnL of the part of this order that closed a position, after its share of fees.
    pub closed_pnl: Decimal,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Order {
    pub fn leaves_qty(&self) -> Decimal {
        if self.status.is_open() || self.status == OrderStatus::Triggered {
            self.qty - self.cum_exec_qty
        } else {
            Decimal::ZERO
        }
    }
}

/// One fill; also the control API's view.
#[derive(Clone, Debug, Serialize)]
pub struct Execution {
    pub exec_id: String,
    pub order_id: String,
    pub order_link_id: String,
    pub symbol: String,
    pub side: Side,
    pub order_type: OrderType,
    pub create_type: CreateType,
    pub order_price: Decimal,
    pub order_qty: Decimal,
    pub leaves_qty: Decimal,
    pub exec_price: Decimal,
    pub exec_qty: Decimal,
    pub exec_value: Decimal,
    pub exec_fee: Decimal,
    pub fee_rate: Decimal,
    pub is_maker: bool,
    pub closed_size: Decimal,
    pub exec_pnl: Decimal,
    pub mark_price: Decimal,
    pub seq: u64,
    pub exec_time: DateTime<Utc>,
}
