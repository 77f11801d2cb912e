//! The webhook body as the OpenAPI document describes it (v1 and the v2 trading language). Only
//! a description: the body is parsed strictly from its raw bytes by `body::parse_signal`, which
//! also accepts a JSON number where a decimal string is shown, and any letter case in the names.

use poem_openapi::{Enum, Object, Union};

/// A signal as sent. Documented here; parsed strictly from the raw bytes by `body::parse_signal`
/// (no unknown fields, no duplicate keys, decimals never through floats).
/// A signal as sent; its decimals are positive, with at most 8 places and 12 integer digits.
#[derive(Debug, Object)]
#[oai(example)]
pub struct SignalRequest {
    /// The webhook token of a user (`hbxu_…`: that user alone) or of a strategy (`hbxs_…`: every
    /// active subscriber).
    pub token: String,
    /// `buy`, `sell`, `close` (flattens the whole position) or `cancel` (cancels the open HUMBEX
    /// orders on the symbol).
    pub action: String,
    /// Bybit symbol; `AVAXUSDT`, `AVAXUSDT.P` and `BYBIT:AVAXUSDT.P` are all accepted.
    pub symbol: String,
    /// Positive decimal with at most 8 places, as a JSON number or a string, in `quantity_type`
    /// units. Optional for close; absent with `target_position` and for cancel.
    #[oai(validator(
        pattern = r"^(0*[1-9][0-9]{0,11}(\.[0-9]{1,8})?|0+\.(0{0,7}[1-9]|0{0,6}[1-9][0-9]|0{0,5}[1-9][0-9]{2}|0{0,4}[1-9][0-9]{3}|0{0,3}[1-9][0-9]{4}|0{0,2}[1-9][0-9]{5}|0?[1-9][0-9]{6}|[1-9][0-9]{7}))$"
    ))]
    pub quantity: Option<String>,
    /// Client idempotency key (1 to 128 characters), unique per token owner.
    pub id: Option<String>,
    /// When the alert fired: RFC 3339, epoch seconds or epoch milliseconds. More than 5 minutes
    /// from the server clock is refused as a replay.
    pub timestamp: Option<String>,
    /// Reference price (positive decimal, at most 8 places).
    #[oai(validator(
        pattern = r"^(0*[1-9][0-9]{0,11}(\.[0-9]{1,8})?|0+\.(0{0,7}[1-9]|0{0,6}[1-9][0-9]|0{0,5}[1-9][0-9]{2}|0{0,4}[1-9][0-9]{3}|0{0,3}[1-9][0-9]{4}|0{0,2}[1-9][0-9]{5}|0?[1-9][0-9]{6}|[1-9][0-9]{7}))$"
    ))]
    pub price: Option<String>,
    /// Free text, at most 1000 characters.
    pub comment: Option<String>,
    /// The position the strategy now holds (TradingView: `"{{strategy.position_size}}"`): signed,
    /// negative is short, 0 is flat. Each account trades the difference to target × multiplier.
    /// Not with `quantity`; `action` is then informational.
    #[oai(validator(pattern = r"^-?[0-9]{1,12}(\.[0-9]{1,8})?$"))]
    pub target_position: Option<String>,
    /// What `quantity` counts (default `base`: coins).
    pub quantity_type: Option<QuantityTypeName>,
    /// `market` (default) or `limit` (needs `limit_price`).
    pub order_type: Option<OrderTypeName>,
    /// The limit price of an `order_type` `limit` order.
    #[oai(validator(
        pattern = r"^(0*[1-9][0-9]{0,11}(\.[0-9]{1,8})?|0+\.(0{0,7}[1-9]|0{0,6}[1-9][0-9]|0{0,5}[1-9][0-9]{2}|0{0,4}[1-9][0-9]{3}|0{0,3}[1-9][0-9]{4}|0{0,2}[1-9][0-9]{5}|0?[1-9][0-9]{6}|[1-9][0-9]{7}))$"
    ))]
    pub limit_price: Option<String>,
    /// Default `gtc`; a market order takes only `ioc`.
    pub time_in_force: Option<TimeInForceName>,
    /// Cancel what is still unfilled after this many seconds (a limit order or a `trigger_price`
    /// entry); 1 to 2592000.
    #[oai(validator(minimum(value = "1"), maximum(value = "2592000")))]
    pub cancel_after_secs: Option<u32>,
    /// A conditional entry: the order is placed when the price crosses this (buy or sell only).
    #[oai(validator(
        pattern = r"^(0*[1-9][0-9]{0,11}(\.[0-9]{1,8})?|0+\.(0{0,7}[1-9]|0{0,6}[1-9][0-9]|0{0,5}[1-9][0-9]{2}|0{0,4}[1-9][0-9]{3}|0{0,3}[1-9][0-9]{4}|0{0,2}[1-9][0-9]{5}|0?[1-9][0-9]{6}|[1-9][0-9]{7}))$"
    ))]
    pub trigger_price: Option<String>,
    /// Take profit, kept on the exchange: a price, or `{"price": x}` / `{"percent": x}` from the
    /// entry's average fill price.
    pub take_profit: Option<LevelRequest>,
    /// Stop loss, kept on the exchange: a price, or `{"price": x}` / `{"percent": x}` (below 100).
    pub stop_loss: Option<LevelRequest>,
    /// A trailing stop kept on the exchange.
    pub trailing_stop: Option<TrailingStopRequest>,
    /// Move the stop loss to entry ± `offset_percent` once the price moved `trigger_percent` in
    /// favour (once).
    pub break_even: Option<BreakEvenRequest>,
    /// Leverage to trade at (1 to 200, at most 2 places); set on the account only when different.
    #[oai(validator(pattern = r"^[0-9]{1,3}(\.[0-9]{1,2})?$"))]
    pub leverage: Option<String>,
    /// `cross` or `isolated`; set on the account only when different.
    pub margin_mode: Option<MarginModeName>,
    /// Do not send an order more than this many seconds after `timestamp` (or, without one, after
    /// arrival): the order is skipped as `stale`. 1 to 86400.
    #[oai(validator(minimum(value = "1"), maximum(value = "86400")))]
    pub max_lag_secs: Option<u32>,
}

impl poem_openapi::types::Example for SignalRequest {
    fn example() -> Self {
        SignalRequest {
            token: "hbxu_3kTqW9mZ2rYx8LpN4vB6cD1fGhJ0a2bC3d".into(),
            action: "buy".into(),
            symbol: "AVAXUSDT".into(),
            quantity: Some("1.5".into()),
            id: Some("strat-42-entry-2026-11-28T12:00:00Z".into()),
            timestamp: Some("2026-11-28T12:00:00Z".into()),
            price: None,
            comment: None,
            target_position: None,
            quantity_type: None,
            order_type: None,
            limit_price: None,
            time_in_force: None,
            cancel_after_secs: None,
            trigger_price: None,
            take_profit: Some(LevelRequest::Object(LevelObject {
                price: None,
                percent: Some("3".into()),
            })),
            stop_loss: Some(LevelRequest::Price("19.5".into())),
            trailing_stop: None,
            break_even: None,
            leverage: Some("5".into()),
            margin_mode: None,
            max_lag_secs: None,
        }
    }
}

#[derive(Debug, Enum)]
#[oai(rename_all = "snake_case")]
pub enum QuantityTypeName {
    Base,
    Usdt,
    EquityPercent,
    RiskPercent,
    PositionPercent,
}

#[derive(Debug, Enum)]
#[oai(rename_all = "snake_case")]
pub enum OrderTypeName {
    Market,
    Limit,
}

#[derive(Debug, Enum)]
#[oai(rename_all = "snake_case")]
pub enum TimeInForceName {
    Gtc,
    Ioc,
    Fok,
    PostOnly,
}

#[derive(Debug, Enum)]
#[oai(rename_all = "snake_case")]
pub enum MarginModeName {
    Cross,
    Isolated,
}

/// A take-profit or stop-loss level: a bare price, or an object with exactly one of `price` and
/// `percent`.
#[derive(Debug, Union)]
pub enum LevelRequest {
    Price(String),
    Object(LevelObject),
}

#[derive(Debug, Object)]
pub struct LevelObject {
    /// An absolute price.
    #[oai(validator(
        pattern = r"^(0*[1-9][0-9]{0,11}(\.[0-9]{1,8})?|0+\.(0{0,7}[1-9]|0{0,6}[1-9][0-9]|0{0,5}[1-9][0-9]{2}|0{0,4}[1-9][0-9]{3}|0{0,3}[1-9][0-9]{4}|0{0,2}[1-9][0-9]{5}|0?[1-9][0-9]{6}|[1-9][0-9]{7}))$"
    ))]
    pub price: Option<String>,
    /// Percent from the entry's average fill price.
    #[oai(validator(
        pattern = r"^(0*[1-9][0-9]{0,11}(\.[0-9]{1,8})?|0+\.(0{0,7}[1-9]|0{0,6}[1-9][0-9]|0{0,5}[1-9][0-9]{2}|0{0,4}[1-9][0-9]{3}|0{0,3}[1-9][0-9]{4}|0{0,2}[1-9][0-9]{5}|0?[1-9][0-9]{6}|[1-9][0-9]{7}))$"
    ))]
    pub percent: Option<String>,
}

/// Exactly one of `distance` (price units) and `percent` (of the entry price).
#[derive(Debug, Object)]
pub struct TrailingStopRequest {
    #[oai(validator(
        pattern = r"^(0*[1-9][0-9]{0,11}(\.[0-9]{1,8})?|0+\.(0{0,7}[1-9]|0{0,6}[1-9][0-9]|0{0,5}[1-9][0-9]{2}|0{0,4}[1-9][0-9]{3}|0{0,3}[1-9][0-9]{4}|0{0,2}[1-9][0-9]{5}|0?[1-9][0-9]{6}|[1-9][0-9]{7}))$"
    ))]
    pub distance: Option<String>,
    #[oai(validator(
        pattern = r"^(0*[1-9][0-9]{0,11}(\.[0-9]{1,8})?|0+\.(0{0,7}[1-9]|0{0,6}[1-9][0-9]|0{0,5}[1-9][0-9]{2}|0{0,4}[1-9][0-9]{3}|0{0,3}[1-9][0-9]{4}|0{0,2}[1-9][0-9]{5}|0?[1-9][0-9]{6}|[1-9][0-9]{7}))$"
    ))]
    pub percent: Option<String>,
    /// The trailing stop is armed only once the price reaches this.
    #[oai(validator(
        pattern = r"^(0*[1-9][0-9]{0,11}(\.[0-9]{1,8})?|0+\.(0{0,7}[1-9]|0{0,6}[1-9][0-9]|0{0,5}[1-9][0-9]{2}|0{0,4}[1-9][0-9]{3}|0{0,3}[1-9][0-9]{4}|0{0,2}[1-9][0-9]{5}|0?[1-9][0-9]{6}|[1-9][0-9]{7}))$"
    ))]
    pub activation_price: Option<String>,
}

#[derive(Debug, Object)]
pub struct BreakEvenRequest {
    /// How far (percent) the price must move in favour of the entry.
    #[oai(validator(
        pattern = r"^(0*[1-9][0-9]{0,11}(\.[0-9]{1,8})?|0+\.(0{0,7}[1-9]|0{0,6}[1-9][0-9]|0{0,5}[1-9][0-9]{2}|0{0,4}[1-9][0-9]{3}|0{0,3}[1-9][0-9]{4}|0{0,2}[1-9][0-9]{5}|0?[1-9][0-9]{6}|[1-9][0-9]{7}))$"
    ))]
    pub trigger_percent: String,
    /// Where the stop goes, percent past the entry in favour (default 0: at the entry); below
    /// `trigger_percent`.
    pub offset_percent: Option<String>,
}
