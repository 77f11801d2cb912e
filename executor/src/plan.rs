//! The pure part of planning: how much each target account trades, from the signal's quantity, the
//! subscription's multiplier and cap, and the instrument's lot rules. Never a float.

use rust_decimal::Decimal;

/// Bybit's lot rules for one symbol (lotSizeFilter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LotRules {
    pub qty_step: Decimal,
    pub min_order_qty: Decimal,
    pub max_order_qty: Decimal,
    pub max_market_order_qty: Decimal,
}

/// What a subscription does to a signal's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    pub size_multiplier: Decimal,
    pub max_qty: Option<Decimal>,
}

/// One account's quantity, or why it sends nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedQty {
    Trade(Decimal),
    Skip(String),
}

/// Round down to a multiple of `step` (a zero step leaves the value as it is).
pub fn round_down_to_step(value: Decimal, step: Decimal) -> Decimal {
    if step <= Decimal::ZERO {
        return value;
    }
    ((value / step).floor() * step).normalize()
}

/// Quantity for a market buy or sell: signal × multiplier, capped by the subscription and by the
/// market-order maximum, rounded down to the step; below the minimum it is skipped with the reason.
pub fn market_quantity(signal_qty: Decimal, sizing: Sizing, lot: LotRules) -> PlannedQty {
    let mut qty = signal_qty * sizing.size_multiplier;
    if let Some(cap) = sizing.max_qty {
        qty = qty.min(cap);
    }
    qty = qty.min(lot.max_market_order_qty).min(lot.max_order_qty);
    let qty = round_down_to_step(qty, lot.qty_step);
    if qty < lot.min_order_qty || qty <= Decimal::ZERO {
        return PlannedQty::Skip(format!(
            "quantity {} is below the minimum order quantity {} after sizing and rounding to the step {}",
            qty, lot.min_order_qty, lot.qty_step
        ));
    }
    PlannedQty::Trade(qty)
}

/// A `close`: the whole position, on the opposite side, reduce-only; flat is a skip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClosePlan {
    /// Sell to close a long, buy to close a short.
    Reduce {
        sell: bool,
        qty: Decimal,
    },
    Skip(String),
}

/// `position_size` is signed: positive long, negative short.
pub fn close_position(position_size: Decimal) -> ClosePlan {
    if position_size.is_zero() {
        ClosePlan::Skip("no position".into())
    } else {
        ClosePlan::Reduce {
            sell: position_size > Decimal::ZERO,
            qty: position_size.abs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::prelude::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn avax() -> LotRules {
        LotRules {
            qty_step: d("0.1"),
            min_order_qty: d("0.1"),
            max_order_qty: d("50000"),
            max_market_order_qty: d("10000"),
        }
    }

    fn sizing(mult: &str, cap: Option<&str>) -> Sizing {
        Sizing {
            size_multiplier: d(mult),
            max_qty: cap.map(d),
        }
    }

    #[test]
    fn multiplies_caps_and_rounds_down() {
        assert_eq!(
            market_quantity(d("1.5"), sizing("1", None), avax()),
            PlannedQty::Trade(d("1.5"))
        );
        assert_eq!(
            market_quantity(d("1.5"), sizing("2.5", None), avax()),
            PlannedQty::Trade(d("3.7"))
        );
        assert_eq!(
            market_quantity(d("10"), sizing("3", Some("12.34")), avax()),
            PlannedQty::Trade(d("12.3"))
        );
        assert_eq!(
            market_quantity(d("20000"), sizing("1", None), avax()),
            PlannedQty::Trade(d("10000"))
        );
    }

    #[test]
    fn below_minimum_is_skipped_with_the_reason() {
        match market_quantity(d("0.15"), sizing("0.5", None), avax()) {
            PlannedQty::Skip(reason) => assert!(reason.contains("below the minimum"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rounding_never_rounds_up() {
        for (value, step, expected) in [
            ("0.99", "0.1", "0.9"),
            ("5", "2", "4"),
            ("0.123", "0.001", "0.123"),
            ("7", "0", "7"),
        ] {
            assert_eq!(
                round_down_to_step(d(value), d(step)),
                d(expected),
                "{value} / {step}"
            );
        }
    }

    #[test]
    fn close_takes_the_opposite_side_of_the_whole_position() {
        assert_eq!(
            close_position(d("2.5")),
            ClosePlan::Reduce {
                sell: true,
                qty: d("2.5")
            }
        );
        assert_eq!(
            close_position(d("-1")),
            ClosePlan::Reduce {
                sell: false,
                qty: d("1")
            }
        );
        assert_eq!(
            close_position(Decimal::ZERO),
            ClosePlan::Skip("no position".into())
        );
    }
}
