//! Typed Bybit V5 requests and responses (linear USDT perpetuals): market data, orders, fills,
//! positions, wallet, API-key info, rate-limit headers and private-stream pushes. Wire field names
//! are mapped here; every amount is a `Decimal` parsed from Bybit's strings, never an `f64`.

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::lenient;

/// `Buy` (long) or `Sell` (short), capitalised as Bybit spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "Buy",
            Side::Sell => "Sell",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderType {
    Market,
    Limit,
    /// Bybit reports `UNKNOWN` for non-order events such as funding.
    #[serde(other)]
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TimeInForce {
    #[serde(rename = "GTC")]
    GoodTillCancel,
    #[serde(rename = "IOC")]
    ImmediateOrCancel,
    #[serde(rename = "FOK")]
    FillOrKill,
    PostOnly,
}

/// Order life-cycle states (docs/bybit.md#order-statuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderStatus {
    New,
    PartiallyFilled,
    Untriggered,
    Triggered,
    Filled,
    Cancelled,
    Rejected,
    PartiallyFilledCanceled,
    Deactivated,
    /// A state this client does not know yet; treated as non-terminal so it is re-checked.
    #[serde(other)]
    Unknown,
}

impl OrderStatus {
    /// No further change will happen to the order. A derivatives `Cancelled` may still carry fills.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Filled
                | OrderStatus::Cancelled
                | OrderStatus::Rejected
                | OrderStatus::PartiallyFilledCanceled
                | OrderStatus::Deactivated
        )
    }
}

/// `0` one-way mode, `1` hedge-mode long slot, `2` hedge-mode short slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum PositionIdx {
    #[default]
    OneWay,
    HedgeBuy,
    HedgeSell,
}

impl From<PositionIdx> for u8 {
    fn from(idx: PositionIdx) -> u8 {
        match idx {
            PositionIdx::OneWay => 0,
            PositionIdx::HedgeBuy => 1,
            PositionIdx::HedgeSell => 2,
        }
    }
}

impl TryFrom<u8> for PositionIdx {
    type Error = String;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            0 => Ok(PositionIdx::OneWay),
            1 => Ok(PositionIdx::HedgeBuy),
            2 => Ok(PositionIdx::HedgeSell),
            other => Err(format!("positionIdx {other} is not 0, 1 or 2")),
        }
    }
}

/// A client order id that Bybit will accept: 1 to 36 characters of `[A-Za-z0-9_-]`.
///
/// Checked locally so a malformed id is refused before anything is sent, instead of coming back as
/// a 10001 that would look like a venue rejection.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct OrderLinkId(String);

impl OrderLinkId {
    pub const MAX_LEN: usize = 36;

    pub fn parse(id: impl Into<String>) -> Result<OrderLinkId, String> {
        let id = id.into();
        if id.is_empty() || id.len() > Self::MAX_LEN {
            return Err(format!(
                "orderLinkId must be 1 to {} characters, got {}",
                Self::MAX_LEN,
                id.len()
            ));
        }
        if let Some(bad) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("orderLinkId may not contain {bad:?}"));
        }
        Ok(OrderLinkId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderLinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The three `X-Bapi-Limit*` response headers; any may be missing (public endpoints omit them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimitStatus {
    /// `X-Bapi-Limit`: requests allowed per window for this endpoint.
    pub limit: Option<u32>,
    /// `X-Bapi-Limit-Status`: requests left in the current window.
    pub remaining: Option<u32>,
    /// `X-Bapi-Limit-Reset-Timestamp`: ms since the epoch when the window resets.
    pub reset_at_ms: Option<i64>,
}

/// A successful REST answer: the parsed `result`, the rate-limit headers and the envelope `time`.
#[derive(Clone, Debug)]
pub struct BybitResponse<T> {
    pub value: T,
    pub rate_limit: RateLimitStatus,
    /// Envelope `time`: the server clock in ms, useful to measure clock skew.
    pub server_time_ms: Option<i64>,
}

/// `GET /v5/market/time`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerTime {
    #[serde(deserialize_with = "lenient::int")]
    pub time_second: i64,
    #[serde(deserialize_with = "lenient::int")]
    pub time_nano: i64,
}

impl ServerTime {
    pub fn millis(&self) -> i64 {
        self.time_nano / 1_000_000
    }
}

/// The trading rules of one linear instrument (`GET /v5/market/instruments-info`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentInfo {
    pub symbol: String,
    pub status: String,
    #[serde(default)]
    pub base_coin: String,
    #[serde(default)]
    pub quote_coin: String,
    pub price_filter: PriceFilter,
    pub lot_size_filter: LotSizeFilter,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceFilter {
    #[serde(deserialize_with = "lenient::decimal")]
    pub tick_size: Decimal,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub min_price: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub max_price: Option<Decimal>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LotSizeFilter {
    #[serde(deserialize_with = "lenient::decimal")]
    pub qty_step: Decimal,
    #[serde(deserialize_with = "lenient::decimal")]
    pub min_order_qty: Decimal,
    #[serde(deserialize_with = "lenient::decimal")]
    pub max_order_qty: Decimal,
    /// Market orders are capped by this, not by `max_order_qty`.
    #[serde(deserialize_with = "lenient::decimal")]
    pub max_mkt_order_qty: Decimal,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub min_notional_value: Option<Decimal>,
}

/// `GET /v5/market/tickers` (the fields a trading bot uses).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticker {
    pub symbol: String,
    #[serde(deserialize_with = "lenient::decimal")]
    pub last_price: Decimal,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub mark_price: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub index_price: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub bid1_price: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub ask1_price: Option<Decimal>,
}

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
    pub position_idx: PositionIdx,
    pub time_in_force: Option<TimeInForce>,
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
            position_idx: PositionIdx::OneWay,
            time_in_force: None,
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
}

/// One position slot (`GET /v5/position/list`). A flat slot has `side == None` and size 0.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    pub symbol: String,
    #[serde(default)]
    pub position_idx: PositionIdx,
    #[serde(default, deserialize_with = "lenient::opt_side")]
    pub side: Option<Side>,
    #[serde(deserialize_with = "lenient::decimal")]
    pub size: Decimal,
    /// Entry price (REST calls it `avgPrice`, the WS topic `entryPrice`).
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub avg_price: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub mark_price: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub leverage: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub unrealised_pnl: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub cum_realised_pnl: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub updated_time: Option<i64>,
}

impl Position {
    pub fn is_flat(&self) -> bool {
        self.side.is_none() || self.size.is_zero()
    }
}

/// One account of `GET /v5/account/wallet-balance` (UNIFIED).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletAccount {
    pub account_type: String,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub total_equity: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub total_wallet_balance: Option<Decimal>,
    /// The account-level figure for new orders under cross margin.
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub total_available_balance: Option<Decimal>,
    #[serde(default)]
    pub coin: Vec<CoinBalance>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoinBalance {
    pub coin: String,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub equity: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub wallet_balance: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub unrealised_pnl: Option<Decimal>,
}

/// `GET /v5/user/query-api`: what the signing key may do. See [`crate::key_check`].
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyInfo {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub api_key: String,
    /// Wire value `1` (read-only) or `0` (read-write).
    #[serde(deserialize_with = "lenient::flag")]
    pub read_only: bool,
    /// Permission group → permissions. Kept as an open map so groups Bybit adds later are still
    /// seen (and refused) by the allow-list.
    #[serde(default)]
    pub permissions: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default, rename = "type")]
    pub key_type: Option<i64>,
    #[serde(default)]
    pub deadline_day: Option<i64>,
    #[serde(default)]
    pub expired_at: Option<String>,
    #[serde(default)]
    pub is_master: Option<bool>,
    #[serde(default)]
    pub uta: Option<i64>,
    #[serde(default, rename = "userID")]
    pub user_id: Option<i64>,
}

/// Filter for `GET /v5/execution/list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecutionFilter {
    OrderId(String),
    OrderLinkId(OrderLinkId),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_link_id_rule() {
        assert!(OrderLinkId::parse("bot-0001_x").is_ok());
        assert!(OrderLinkId::parse("a".repeat(36)).is_ok());
        assert!(OrderLinkId::parse("a".repeat(37)).is_err());
        assert!(OrderLinkId::parse("").is_err());
        assert!(OrderLinkId::parse("has space").is_err());
        assert!(OrderLinkId::parse("ünï").is_err());
    }

    #[test]
    fn unknown_enum_values_do_not_fail_parsing() {
        let status: OrderStatus = serde_json::from_str("\"SomethingNew\"").unwrap();
        assert_eq!(status, OrderStatus::Unknown);
        assert!(!status.is_terminal());
        let order_type: OrderType = serde_json::from_str("\"UNKNOWN\"").unwrap();
        assert_eq!(order_type, OrderType::Unknown);
    }

    #[test]
    fn position_idx_round_trips_as_a_number() {
        assert_eq!(serde_json::to_string(&PositionIdx::HedgeSell).unwrap(), "2");
        let idx: PositionIdx = serde_json::from_str("1").unwrap();
        assert_eq!(idx, PositionIdx::HedgeBuy);
        assert!(serde_json::from_str::<PositionIdx>("3").is_err());
    }
}
