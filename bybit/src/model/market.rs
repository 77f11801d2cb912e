//! Market data: server time, instruments and their trading rules, tickers.

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::lenient;

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
    #[serde(default)]
    pub leverage_filter: Option<LeverageFilter>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeverageFilter {
    #[serde(deserialize_with = "lenient::decimal")]
    pub min_leverage: Decimal,
    #[serde(deserialize_with = "lenient::decimal")]
    pub max_leverage: Decimal,
    #[serde(deserialize_with = "lenient::decimal")]
    pub leverage_step: Decimal,
}

/// The rules an order for one symbol must meet, each a decimal: what sizing and validation read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstrumentRules {
    pub symbol: String,
    /// `Trading` when orders are accepted.
    pub status: String,
    pub tick_size: Decimal,
    pub qty_step: Decimal,
    pub min_order_qty: Decimal,
    /// Largest Limit order.
    pub max_order_qty: Decimal,
    /// Largest Market order.
    pub max_mkt_order_qty: Decimal,
    /// Smallest order value in USDT (qty × price); Bybit refuses less with 110094.
    pub min_notional_value: Decimal,
    pub max_leverage: Decimal,
    pub leverage_step: Decimal,
}

impl InstrumentRules {
    pub fn is_trading(&self) -> bool {
        self.status == "Trading"
    }
}

impl From<&InstrumentInfo> for InstrumentRules {
    /// Missing optional filters take Bybit's defaults: no minimum notional, leverage 1 to 1.
    fn from(info: &InstrumentInfo) -> InstrumentRules {
        let leverage = info.leverage_filter.as_ref();
        InstrumentRules {
            symbol: info.symbol.clone(),
            status: info.status.clone(),
            tick_size: info.price_filter.tick_size,
            qty_step: info.lot_size_filter.qty_step,
            min_order_qty: info.lot_size_filter.min_order_qty,
            max_order_qty: info.lot_size_filter.max_order_qty,
            max_mkt_order_qty: info.lot_size_filter.max_mkt_order_qty,
            min_notional_value: info.lot_size_filter.min_notional_value.unwrap_or_default(),
            max_leverage: leverage.map_or(Decimal::ONE, |l| l.max_leverage),
            leverage_step: leverage.map_or(Decimal::new(1, 2), |l| l.leverage_step),
        }
    }
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
