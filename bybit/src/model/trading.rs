//! Orders and fills: the create request with its trigger and TP/SL options, the acknowledgement,
//! orders and executions as REST and the private stream report them, and which order to act on.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{OrderLinkId, OrderStatus, OrderType, PositionIdx, Side, TimeInForce};
use crate::lenient;

/// `POST /v5/order/create` for `category=linear`.
#[derive(Clone, Debug, PartialEq)]
pub struct CreateOrderRequest {
    pub symbol: String,
    pub side: Side,
    pub order_type: OrderType,
    pub qty: Decimal,
    /// Required for `Limit`, ignored by Bybit for `Market`.
    pub price: Option<Decimal>,
    pub order_link_id: OrderLinkId,
    pub reduce_only: bool,
    /// With `reduce_only`, a close that may cancel other orders to free margin.
    pub close_on_trigger: bool,
    pub position_idx: PositionIdx,
    pub time_in_force: Option<TimeInForce>,
    /// Makes the order conditional (status `Untriggered` until the price reaches it).
    pub trigger: Option<Trigger>,
    /// Take profit and stop loss attached to the order (tpslMode `Full`: they become the
    /// position's once the order fills). Not allowed with `reduce_only`.
    pub take_profit: Option<Decimal>,
    pub stop_loss: Option<Decimal>,
}

/// A conditional order's trigger: the price, which way the market must move to reach it, and
/// which price Bybit watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trigger {
    pub price: Decimal,
    pub direction: TriggerDirection,
    pub by: TriggerBy,
}

/// `triggerDirection`: `1` fires when the price rises to the trigger, `2` when it falls to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TriggerDirection {
    Rise,
    Fall,
}

impl TriggerDirection {
    /// The direction that reaches `trigger` from `current`.
    pub fn towards(trigger: Decimal, current: Decimal) -> TriggerDirection {
        if trigger > current {
            TriggerDirection::Rise
        } else {
            TriggerDirection::Fall
        }
    }
    pub fn wire(self) -> u8 {
        match self {
            TriggerDirection::Rise => 1,
            TriggerDirection::Fall => 2,
        }
    }
}

/// `triggerBy` / `tpTriggerBy` / `slTriggerBy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TriggerBy {
    #[default]
    LastPrice,
    MarkPrice,
    IndexPrice,
}

impl TriggerBy {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerBy::LastPrice => "LastPrice",
            TriggerBy::MarkPrice => "MarkPrice",
            TriggerBy::IndexPrice => "IndexPrice",
        }
    }
}

/// Who created an order (`createType`): HUMBEX or the user (`CreateByUser`), or Bybit on the
/// account's behalf. Orders Bybit creates carry an empty orderLinkId.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CreateType {
    CreateByUser,
    /// Closed from the web or app's position close button.
    CreateByClosing,
    CreateByTakeProfit,
    CreateByStopLoss,
    CreateByPartialTakeProfit,
    CreateByPartialStopLoss,
    CreateByTrailingStop,
    /// A conditional order that fired.
    CreateByStopOrder,
    CreateByLiq,
    #[serde(rename = "CreateByTakeOver_PassThrough")]
    CreateByTakeOverPassThrough,
    #[serde(rename = "CreateByAdl_PassThrough")]
    CreateByAdlPassThrough,
    CreateBySettle,
    CreateByAdminClosing,
    CreateByBboOrder,
    /// A value this client does not know yet.
    #[serde(other)]
    Unknown,
}

impl CreateType {
    /// Created by Bybit itself (a stop, a liquidation, an ADL), not by an API call or the user.
    pub fn is_by_exchange(self) -> bool {
        !matches!(
            self,
            CreateType::CreateByUser | CreateType::CreateByClosing | CreateType::CreateByBboOrder
        )
    }
}

impl CreateOrderRequest {
    pub fn market(symbol: impl Into<String>, side: Side, qty: Decimal, id: OrderLinkId) -> Self {
        CreateOrderRequest {
            symbol: symbol.into(),
            side,
            order_type: OrderType::Market,
            qty,
            price: None,
            order_link_id: id,
            reduce_only: false,
            close_on_trigger: false,
            position_idx: PositionIdx::OneWay,
            time_in_force: None,
            trigger: None,
            take_profit: None,
            stop_loss: None,
        }
    }

    pub fn limit(
        symbol: impl Into<String>,
        side: Side,
        qty: Decimal,
        price: Decimal,
        id: OrderLinkId,
    ) -> Self {
        CreateOrderRequest {
            price: Some(price),
            order_type: OrderType::Limit,
            ..CreateOrderRequest::market(symbol, side, qty, id)
        }
    }

    pub fn reduce_only(mut self, reduce_only: bool) -> Self {
        self.reduce_only = reduce_only;
        self
    }

    pub fn position_idx(mut self, position_idx: PositionIdx) -> Self {
        self.position_idx = position_idx;
        self
    }

    pub fn close_on_trigger(mut self, close_on_trigger: bool) -> Self {
        self.close_on_trigger = close_on_trigger;
        self
    }

    pub fn time_in_force(mut self, time_in_force: TimeInForce) -> Self {
        self.time_in_force = Some(time_in_force);
        self
    }

    /// A conditional order: fires when the last price moves `direction` to `price`.
    pub fn trigger(mut self, price: Decimal, direction: TriggerDirection) -> Self {
        self.trigger = Some(Trigger {
            price,
            direction,
            by: TriggerBy::LastPrice,
        });
        self
    }

    /// Attached take profit (tpslMode Full).
    pub fn take_profit(mut self, price: Decimal) -> Self {
        self.take_profit = Some(price);
        self
    }

    /// Attached stop loss (tpslMode Full).
    pub fn stop_loss(mut self, price: Decimal) -> Self {
        self.stop_loss = Some(price);
        self
    }
}

/// The acknowledgement of `POST /v5/order/create`: accepted, not yet filled.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderAck {
    pub order_id: String,
    pub order_link_id: String,
}

/// An order as `GET /v5/order/realtime`, `/v5/order/history` and the `order` topic report it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub order_id: String,
    #[serde(default)]
    pub order_link_id: String,
    pub symbol: String,
    pub side: Side,
    pub order_type: OrderType,
    pub order_status: OrderStatus,
    /// For a market order this is Bybit's protective limit price, not a fill price.
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub price: Option<Decimal>,
    #[serde(deserialize_with = "lenient::decimal")]
    pub qty: Decimal,
    /// `None` until something filled.
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub avg_price: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub leaves_qty: Option<Decimal>,
    #[serde(deserialize_with = "lenient::decimal")]
    pub cum_exec_qty: Decimal,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub cum_exec_value: Option<Decimal>,
    /// Deprecated by Bybit for linear in favour of `cum_fee_detail`, still filled in.
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub cum_exec_fee: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::fee_detail")]
    pub cum_fee_detail: BTreeMap<String, Decimal>,
    #[serde(default)]
    pub time_in_force: String,
    #[serde(default)]
    pub reject_reason: String,
    #[serde(default)]
    pub cancel_type: String,
    #[serde(default)]
    pub reduce_only: bool,
    #[serde(default)]
    pub position_idx: PositionIdx,
    /// `None` only when Bybit leaves it out; HUMBEX's own orders are `CreateByUser`.
    #[serde(default)]
    pub create_type: Option<CreateType>,
    /// `TakeProfit`, `StopLoss`, `TrailingStop`, `Stop`, ... or `""` for a plain order.
    #[serde(default)]
    pub stop_order_type: String,
    /// Realised PnL of the closing part of this order, net of fees (the order topic's
    /// `closedPnl`); `None` when absent (REST order lists do not carry it).
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub closed_pnl: Option<Decimal>,
    /// `None` when unset (Bybit writes "", "0" or "0.000").
    #[serde(default, deserialize_with = "lenient::opt_price")]
    pub trigger_price: Option<Decimal>,
    /// `0` none, `1` rise, `2` fall.
    #[serde(default)]
    pub trigger_direction: u8,
    #[serde(default, deserialize_with = "lenient::opt_price")]
    pub take_profit: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_price")]
    pub stop_loss: Option<Decimal>,
    #[serde(default)]
    pub tpsl_mode: String,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub created_time: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub updated_time: Option<i64>,
}

/// One fill, from `GET /v5/execution/list` or the `execution` topic. `exec_id` is the dedupe key.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub exec_id: String,
    pub order_id: String,
    #[serde(default)]
    pub order_link_id: String,
    pub symbol: String,
    pub side: Side,
    /// `Trade` for the account's own order fills; also `Funding`, `AdlTrade`, `BustTrade`, ...
    pub exec_type: String,
    #[serde(deserialize_with = "lenient::decimal")]
    pub exec_price: Decimal,
    #[serde(deserialize_with = "lenient::decimal")]
    pub exec_qty: Decimal,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub exec_value: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub exec_fee: Option<Decimal>,
    #[serde(default)]
    pub fee_currency: String,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub fee_rate: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub leaves_qty: Option<Decimal>,
    #[serde(default)]
    pub is_maker: bool,
    #[serde(deserialize_with = "lenient::int")]
    pub exec_time: i64,
    #[serde(default)]
    pub seq: Option<i64>,
    #[serde(default)]
    pub create_type: Option<CreateType>,
    #[serde(default)]
    pub stop_order_type: String,
    /// The quantity of this fill that closed a position.
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub closed_size: Option<Decimal>,
    /// Gross PnL of the closing part of this fill (fees not deducted); Bybit's `execPnl`. The
    /// fee-net figure is the order's `closedPnl`.
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub exec_pnl: Option<Decimal>,
}

/// Which order a cancel or a lookup means: Bybit's id, or the client's orderLinkId.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderRef {
    OrderId(String),
    OrderLinkId(OrderLinkId),
}

/// `POST /v5/position/trading-stop` (tpslMode `Full`): each field `None` leaves that stop as it
/// is, `Some(Decimal::ZERO)` cancels it, any other value sets it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TradingStopRequest {
    pub symbol: String,
    pub position_idx: PositionIdx,
    pub take_profit: Option<Decimal>,
    pub stop_loss: Option<Decimal>,
    /// A price distance (not a percent).
    pub trailing_stop: Option<Decimal>,
    /// The price at which the trailing stop starts to trail.
    pub active_price: Option<Decimal>,
}

/// Filter for `GET /v5/execution/list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecutionFilter {
    OrderId(String),
    OrderLinkId(OrderLinkId),
}
