//! One symbol's trading rules as instruments-info gives them (lotSizeFilter, priceFilter,
//! leverageFilter), and the two roundings every size and price goes through.

use humbex_bybit::InstrumentInfo;
use rust_decimal::Decimal;

use crate::plan::LotRules;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstrumentRules {
    pub qty_step: Decimal,
    pub min_order_qty: Decimal,
    pub max_order_qty: Decimal,
    /// Market orders are capped by this rather than by `max_order_qty`.
    pub max_market_order_qty: Decimal,
    /// Minimum qty × price of an opening order; zero when the exchange lists none.
    pub min_notional: Decimal,
    pub tick_size: Decimal,
    /// From the instrument's leverageFilter; `None` when the exchange lists none (then Bybit's own
    /// refusal is the check).
    pub max_leverage: Option<Decimal>,
}

/// Which way a price is rounded to the tick: always chosen so the result asks for less than the
/// trader did (a nearer take profit, a nearer stop), never more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toward {
    Down,
    Up,
}

impl InstrumentRules {
    pub fn from_info(info: &InstrumentInfo) -> Self {
        let lot = &info.lot_size_filter;
        InstrumentRules {
            qty_step: lot.qty_step,
            min_order_qty: lot.min_order_qty,
            max_order_qty: lot.max_order_qty,
            max_market_order_qty: lot.max_mkt_order_qty,
            min_notional: lot.min_notional_value.unwrap_or(Decimal::ZERO),
            tick_size: info.price_filter.tick_size,
            max_leverage: info.leverage_filter.as_ref().map(|l| l.max_leverage),
        }
    }

    /// The lot part, for the v1 path in [`crate::plan`].
    pub fn lot(&self) -> LotRules {
        LotRules {
            qty_step: self.qty_step,
            min_order_qty: self.min_order_qty,
            max_order_qty: self.max_order_qty,
            max_market_order_qty: self.max_market_order_qty,
        }
    }

    /// Round a quantity down to the step (towards zero for a signed one): never more than asked.
    pub fn qty_down(&self, qty: Decimal) -> Decimal {
        step_toward_zero(qty, self.qty_step)
    }

    /// Round a price to the tick, in the given direction.
    pub fn price(&self, price: Decimal, toward: Toward) -> Decimal {
        if self.tick_size <= Decimal::ZERO {
            return price.normalize();
        }
        let ticks = price / self.tick_size;
        let ticks = match toward {
            Toward::Down => ticks.floor(),
            Toward::Up => ticks.ceil(),
        };
        (ticks * self.tick_size).normalize()
    }

    /// The largest single order of this kind.
    pub fn max_qty(&self, market: bool) -> Decimal {
        if market {
            self.max_market_order_qty.min(self.max_order_qty)
        } else {
            self.max_order_qty
        }
    }
}

/// `value` rounded towards zero to a multiple of `step` (a zero step leaves it as it is).
pub fn step_toward_zero(value: Decimal, step: Decimal) -> Decimal {
    if step <= Decimal::ZERO {
        return value.normalize();
    }
    ((value / step).trunc() * step).normalize()
}

#[cfg(test)]
pub(crate) fn avax() -> InstrumentRules {
    use crate::trade::d;
    InstrumentRules {
        qty_step: d("0.1"),
        min_order_qty: d("0.1"),
        max_order_qty: d("50000"),
        max_market_order_qty: d("10000"),
        min_notional: d("5"),
        tick_size: d("0.001"),
        max_leverage: Some(d("50")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trade::d;

    #[test]
    fn quantities_round_towards_zero_and_prices_the_way_asked() {
        let r = avax();
        assert_eq!(r.qty_down(d("1.99")), d("1.9"));
        assert_eq!(r.qty_down(d("-1.99")), d("-1.9"));
        assert_eq!(r.qty_down(d("0.05")), d("0"));
        assert_eq!(r.price(d("20.4567"), Toward::Down), d("20.456"));
        assert_eq!(r.price(d("20.4561"), Toward::Up), d("20.457"));
        assert_eq!(r.price(d("20.456"), Toward::Up), d("20.456"));
        assert_eq!(r.max_qty(true), d("10000"));
        assert_eq!(r.max_qty(false), d("50000"));
        assert_eq!(step_toward_zero(d("7.3"), d("0")), d("7.3"));
        assert_eq!(step_toward_zero(d("5"), d("2")), d("4"));
    }

    #[test]
    fn read_from_the_exchange_answer() {
        let info: InstrumentInfo = serde_json::from_value(serde_json::json!({
            "symbol": "AVAXUSDT", "status": "Trading",
            "priceFilter": {"minPrice": "0.001", "maxPrice": "1999.998", "tickSize": "0.001"},
            "lotSizeFilter": {"maxOrderQty": "50000", "minOrderQty": "0.1", "qtyStep": "0.1",
                              "maxMktOrderQty": "10000", "postOnlyMaxOrderQty": "50000",
                              "minNotionalValue": "5"}
        }))
        .unwrap();
        let rules = InstrumentRules::from_info(&info);
        assert_eq!(
            rules,
            InstrumentRules {
                max_leverage: None,
                ..avax()
            }
        );
    }
}
