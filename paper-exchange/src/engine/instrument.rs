//! Listed instruments: a linear USDT perpetual's trading filters and its current price.

use rust_decimal::Decimal;

use super::wire::fmt_dp;
use crate::config::SymbolConfig;

/// A linear USDT perpetual with its trading filters and current (last = mark) price.
#[derive(Clone, Debug)]
pub struct Instrument {
    pub symbol: String,
    pub symbol_id: u32,
    pub base_coin: String,
    pub tick_size: Decimal,
    pub qty_step: Decimal,
    pub min_order_qty: Decimal,
    pub max_order_qty: Decimal,
    pub max_mkt_order_qty: Decimal,
    pub min_notional: Decimal,
    pub max_leverage: Decimal,
    pub price: Decimal,
}

impl Instrument {
    /// Filters modelled on Bybit's real values for the common symbols, derived from the price otherwise.
    pub fn new(symbol_id: u32, config: &SymbolConfig) -> Instrument {
        let symbol = config.symbol.clone();
        let base_coin = symbol.trim_end_matches("USDT").to_string();
        let d = |s: &str| s.parse::<Decimal>().expect("valid literal");
        let (tick, step, min, max, max_mkt, max_lev) = match symbol.as_str() {
            "BTCUSDT" => (d("0.10"), d("0.001"), d("0.001"), d("1190"), d("119"), d("100")),
            "ETHUSDT" => (d("0.01"), d("0.01"), d("0.01"), d("7240"), d("724"), d("100")),
            "AVAXUSDT" => (d("0.001"), d("0.1"), d("0.1"), d("50000"), d("10000"), d("50")),
            "SOLUSDT" => (d("0.010"), d("0.1"), d("0.1"), d("79770"), d("7977"), d("100")),
            _ => {
                let magnitude = decimal_magnitude(config.price);
                let tick = pow10(magnitude - 4);
                let step = pow10(-magnitude.clamp(-3, 4));
                let max = step * Decimal::from(500_000);
                (tick, step, step, max, max / Decimal::from(5), d("25"))
            }
        };
        Instrument {
            symbol,
            symbol_id,
            base_coin,
            tick_size: tick,
            qty_step: step,
            min_order_qty: min,
            max_order_qty: max,
            max_mkt_order_qty: max_mkt,
            min_notional: d("5"),
            max_leverage: max_lev,
            price: round_to_step(config.price, tick),
        }
    }

    pub fn price_dp(&self) -> u32 {
        self.tick_size.normalize().scale()
    }
    pub fn qty_dp(&self) -> u32 {
        self.qty_step.normalize().scale()
    }
    pub fn fmt_price(&self, value: Decimal) -> String {
        fmt_dp(value, self.price_dp())
    }
    pub fn fmt_qty(&self, value: Decimal) -> String {
        fmt_dp(value, self.qty_dp().max(1))
    }
}

pub fn round_to_step(value: Decimal, step: Decimal) -> Decimal {
    ((value / step).round() * step).normalize()
}

fn pow10(exp: i32) -> Decimal {
    if exp >= 0 {
        Decimal::from(10u64.pow(exp as u32))
    } else {
        Decimal::new(1, (-exp) as u32)
    }
}

fn decimal_magnitude(value: Decimal) -> i32 {
    let mut magnitude = 0i32;
    let mut v = value.abs();
    if v.is_zero() {
        return 0;
    }
    while v >= Decimal::TEN {
        v /= Decimal::TEN;
        magnitude += 1;
    }
    while v < Decimal::ONE {
        v *= Decimal::TEN;
        magnitude -= 1;
    }
    magnitude
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_filters_for_unknown_symbols() {
        let cfg = SymbolConfig {
            symbol: "XYZUSDT".into(),
            price: "2.5".parse().unwrap(),
        };
        let i = Instrument::new(9, &cfg);
        assert_eq!(i.tick_size.to_string(), "0.0001");
        assert_eq!(i.qty_step.to_string(), "1");
    }
}
