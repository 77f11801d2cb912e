//! How many coins one account's order is for, from the signal's `quantity` and `quantity_type`, the
//! subscription's multiplier and cap, and the instrument's rules. Decimals end to end; every result
//! is rounded down; an order that cannot meet the exchange's minimums is a skip with its reason
//! before anything is sent (docs/trading-v2-executor.md#sizing).

use humbex_shared::domain::trade::{Level, QuantityType};
use rust_decimal::Decimal;

use super::rules::InstrumentRules;
use super::skip::SkipReason;

/// What a subscription does to every size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    pub multiplier: Decimal,
    /// Caps each order's size (a target position's absolute size, for target sync).
    pub max_qty: Option<Decimal>,
}

impl Scale {
    pub const ONE: Scale = Scale {
        multiplier: Decimal::ONE,
        max_qty: None,
    };

    /// `qty` × multiplier, capped at `max_qty` in absolute size, sign kept.
    pub fn apply(&self, qty: Decimal) -> Decimal {
        let scaled = qty * self.multiplier;
        match self.max_qty {
            Some(cap) if scaled.abs() > cap => {
                if scaled.is_sign_negative() {
                    -cap
                } else {
                    cap
                }
            }
            _ => scaled,
        }
    }
}

/// What the account and the market look like when the order is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Market {
    /// The price the order is valued at: the limit price, else the trigger price, else the last
    /// price (the signal's `price` or the ticker). `None` when none is known.
    pub price: Option<Decimal>,
    /// The account's USDT equity (wallet-balance, kept fresh from the `wallet` topic).
    pub equity: Option<Decimal>,
    /// The leverage the position will have (the spec's, else the account's; 1 when unknown).
    pub leverage: Decimal,
    /// The current position, signed (positive long).
    pub position: Decimal,
}

/// The order being sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    pub quantity_type: QuantityType,
    pub quantity: Decimal,
    pub buy: bool,
    /// A market order (capped at maxMktOrderQty) or a limit/conditional one (maxOrderQty).
    pub market: bool,
    /// Needed by `risk_percent`.
    pub stop_loss: Option<Level>,
}

/// A sized order: its quantity and whether it may only reduce the position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sized {
    pub qty: Decimal,
    pub reduce_only: bool,
}

/// The size in coins before the subscription's multiplier and any rounding.
pub fn base_quantity(ask: &Ask, market: &Market) -> Result<Decimal, SkipReason> {
    let q = ask.quantity;
    let price = || {
        market
            .price
            .filter(|p| *p > Decimal::ZERO)
            .ok_or(SkipReason::NoPrice)
    };
    let equity = || {
        market
            .equity
            .filter(|e| *e > Decimal::ZERO)
            .ok_or(SkipReason::NoEquity)
    };
    Ok(match ask.quantity_type {
        QuantityType::Base => q,
        QuantityType::Usdt => q / price()?,
        QuantityType::EquityPercent => {
            equity()? * q / Decimal::ONE_HUNDRED * market.leverage.max(Decimal::ONE) / price()?
        }
        QuantityType::RiskPercent => {
            let entry = price()?;
            let loss_per_coin = match ask.stop_loss {
                None => return Err(SkipReason::RiskWithoutStopLoss),
                Some(Level::Percent(p)) => entry * p.fraction(),
                Some(Level::Price(stop)) => {
                    let stop = stop.get();
                    let on_losing_side = if ask.buy { stop < entry } else { stop > entry };
                    if !on_losing_side {
                        return Err(SkipReason::StopLossWrongSide {
                            stop_loss: stop,
                            entry,
                        });
                    }
                    (entry - stop).abs()
                }
            };
            equity()? * q / Decimal::ONE_HUNDRED / loss_per_coin
        }
        QuantityType::PositionPercent => {
            // Only the part of the position the order's side reduces counts.
            let reducible = if ask.buy {
                -market.position
            } else {
                market.position
            };
            if reducible <= Decimal::ZERO {
                return Err(SkipReason::NoPosition);
            }
            reducible * q / Decimal::ONE_HUNDRED
        }
    })
}

/// The full sizing: base quantity × multiplier, capped at `max_qty` and at the instrument's
/// largest order, rounded down to the step, then held against minOrderQty and (for an order that
/// opens) minNotional.
pub fn size(ask: &Ask, market: &Market, scale: Scale, rules: &InstrumentRules) -> Result<Sized, SkipReason> {
    let reduce_only = ask.quantity_type == QuantityType::PositionPercent;
    let mut qty = scale.apply(base_quantity(ask, market)?);
    qty = qty.min(rules.max_qty(ask.market));
    if reduce_only {
        // Never more than the position: a larger reduce-only order is refused (110017).
        qty = qty.min(market.position.abs());
    }
    let qty = rules.qty_down(qty);
    check_minimums(qty, reduce_only, market.price, rules)?;
    Ok(Sized { qty, reduce_only })
}

/// minOrderQty for every order; minNotional for an order that opens, when a price is known (an
/// unknown price leaves that check to the exchange).
pub fn check_minimums(
    qty: Decimal,
    reduce_only: bool,
    price: Option<Decimal>,
    rules: &InstrumentRules,
) -> Result<(), SkipReason> {
    if qty <= Decimal::ZERO || qty < rules.min_order_qty {
        return Err(SkipReason::BelowMinQty {
            qty,
            min: rules.min_order_qty,
            step: rules.qty_step,
        });
    }
    if !reduce_only && let Some(price) = price {
        let notional = qty * price;
        if notional < rules.min_notional {
            return Err(SkipReason::BelowMinNotional {
                notional: notional.normalize(),
                min: rules.min_notional,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trade::d;
    use crate::trade::rules::avax;
    use humbex_shared::domain::Price;
    use humbex_shared::domain::trade::Percent;

    fn ask(kind: QuantityType, quantity: &str) -> Ask {
        Ask {
            quantity_type: kind,
            quantity: d(quantity),
            buy: true,
            market: true,
            stop_loss: None,
        }
    }

    fn at(price: &str) -> Market {
        Market {
            price: Some(d(price)),
            equity: Some(d("1000")),
            leverage: Decimal::ONE,
            position: Decimal::ZERO,
        }
    }

    fn scale(multiplier: &str, cap: Option<&str>) -> Scale {
        Scale {
            multiplier: d(multiplier),
            max_qty: cap.map(d),
        }
    }

    fn qty(result: Result<Sized, SkipReason>) -> Decimal {
        result.expect("sized").qty
    }

    #[test]
    fn base_is_coins_times_multiplier_capped_and_rounded_down() {
        let r = avax();
        assert_eq!(
            qty(size(&ask(QuantityType::Base, "1.5"), &at("20"), Scale::ONE, &r)),
            d("1.5")
        );
        assert_eq!(
            qty(size(
                &ask(QuantityType::Base, "1.5"),
                &at("20"),
                scale("2.5", None),
                &r
            )),
            d("3.7")
        );
        assert_eq!(
            qty(size(
                &ask(QuantityType::Base, "10"),
                &at("20"),
                scale("3", Some("12.34")),
                &r
            )),
            d("12.3")
        );
        // The market-order maximum caps a market order, not a limit one.
        assert_eq!(
            qty(size(&ask(QuantityType::Base, "20000"), &at("20"), Scale::ONE, &r)),
            d("10000")
        );
        let limit = Ask {
            market: false,
            ..ask(QuantityType::Base, "20000")
        };
        assert_eq!(qty(size(&limit, &at("20"), Scale::ONE, &r)), d("20000"));
    }

    #[test]
    fn usdt_is_notional_at_the_price() {
        let r = avax();
        // 100 USDT at 20.3 = 4.926... → 4.9; × 2 = 9.85 → 9.8.
        assert_eq!(
            qty(size(&ask(QuantityType::Usdt, "100"), &at("20.3"), Scale::ONE, &r)),
            d("4.9")
        );
        assert_eq!(
            qty(size(
                &ask(QuantityType::Usdt, "100"),
                &at("20.3"),
                scale("2", None),
                &r
            )),
            d("9.8")
        );
        assert_eq!(
            qty(size(
                &ask(QuantityType::Usdt, "100"),
                &at("20.3"),
                scale("2", Some("3")),
                &r
            )),
            d("3")
        );
        let no_price = Market {
            price: None,
            ..at("1")
        };
        assert_eq!(
            size(&ask(QuantityType::Usdt, "100"), &no_price, Scale::ONE, &r),
            Err(SkipReason::NoPrice)
        );
    }

    #[test]
    fn equity_percent_uses_equity_and_leverage() {
        let r = avax();
        // 10% of 1000 = 100 USDT, × 5 leverage = 500 USDT at 20 = 25 coins; × 0.5 = 12.5.
        let m = Market {
            leverage: d("5"),
            ..at("20")
        };
        assert_eq!(
            qty(size(&ask(QuantityType::EquityPercent, "10"), &m, Scale::ONE, &r)),
            d("25")
        );
        assert_eq!(
            qty(size(
                &ask(QuantityType::EquityPercent, "10"),
                &m,
                scale("0.5", None),
                &r
            )),
            d("12.5")
        );
        assert_eq!(
            qty(size(
                &ask(QuantityType::EquityPercent, "10"),
                &m,
                scale("1", Some("7.77")),
                &r
            )),
            d("7.7")
        );
        let broke = Market {
            equity: Some(Decimal::ZERO),
            ..m
        };
        assert_eq!(
            size(&ask(QuantityType::EquityPercent, "10"), &broke, Scale::ONE, &r),
            Err(SkipReason::NoEquity)
        );
        let unknown = Market { equity: None, ..m };
        assert_eq!(
            size(&ask(QuantityType::EquityPercent, "10"), &unknown, Scale::ONE, &r),
            Err(SkipReason::NoEquity)
        );
    }

    #[test]
    fn risk_percent_sizes_the_loss_at_the_stop() {
        let r = avax();
        // 1% of 1000 = 10 USDT at risk; stop 19 from 20 loses 1 per coin: 10 coins.
        let with_stop = |stop: Level, buy: bool| Ask {
            stop_loss: Some(stop),
            buy,
            ..ask(QuantityType::RiskPercent, "1")
        };
        let stop_price = Level::Price(Price::parse("19").unwrap());
        assert_eq!(
            qty(size(&with_stop(stop_price, true), &at("20"), Scale::ONE, &r)),
            d("10")
        );
        assert_eq!(
            qty(size(
                &with_stop(stop_price, true),
                &at("20"),
                scale("1.5", Some("12")),
                &r
            )),
            d("12")
        );
        // 2% stop of 20 = 0.4 per coin: 25 coins.
        let stop_pct = Level::Percent(Percent::parse("2").unwrap());
        assert_eq!(
            qty(size(&with_stop(stop_pct, false), &at("20"), Scale::ONE, &r)),
            d("25")
        );
        // A stop above the entry of a long is refused with both prices named.
        assert_eq!(
            size(&with_stop(stop_price, true), &at("18"), Scale::ONE, &r),
            Err(SkipReason::StopLossWrongSide {
                stop_loss: d("19"),
                entry: d("18")
            })
        );
        // The same stop above the entry of a short is right: 1 per coin, 10 coins.
        assert_eq!(
            qty(size(&with_stop(stop_price, false), &at("18"), Scale::ONE, &r)),
            d("10")
        );
        assert_eq!(
            size(&ask(QuantityType::RiskPercent, "1"), &at("20"), Scale::ONE, &r),
            Err(SkipReason::RiskWithoutStopLoss)
        );
    }

    #[test]
    fn position_percent_reduces_only_the_side_held() {
        let r = avax();
        let long = Market {
            position: d("3.3"),
            ..at("20")
        };
        let sell = Ask {
            buy: false,
            ..ask(QuantityType::PositionPercent, "50")
        };
        // 50% of 3.3 = 1.65 → 1.6, reduce-only; min notional does not apply to a reduce.
        assert_eq!(
            size(&sell, &long, Scale::ONE, &r),
            Ok(Sized {
                qty: d("1.6"),
                reduce_only: true
            })
        );
        // × 3 would exceed the position: capped at it.
        assert_eq!(qty(size(&sell, &long, scale("3", None), &r)), d("3.3"));
        assert_eq!(qty(size(&sell, &long, scale("1", Some("1")), &r)), d("1"));
        let tiny = Market {
            position: d("0.3"),
            price: Some(d("1")),
            ..long
        };
        assert_eq!(qty(size(&sell, &tiny, Scale::ONE, &r)), d("0.1"));
        // Buying against a long reduces nothing.
        let buy = Ask { buy: true, ..sell };
        assert_eq!(size(&buy, &long, Scale::ONE, &r), Err(SkipReason::NoPosition));
        let short = Market {
            position: d("-2"),
            ..long
        };
        assert_eq!(qty(size(&buy, &short, Scale::ONE, &r)), d("1"));
    }

    #[test]
    fn minimums_are_checked_after_rounding() {
        let r = avax();
        assert_eq!(
            size(
                &ask(QuantityType::Base, "0.15"),
                &at("20"),
                scale("0.5", None),
                &r
            ),
            Err(SkipReason::BelowMinQty {
                qty: d("0"),
                min: d("0.1"),
                step: d("0.1")
            })
        );
        // 0.2 × 20 = 4 USDT < 5: skipped before sending (Bybit would answer 110094).
        let skip = size(&ask(QuantityType::Base, "0.2"), &at("20"), Scale::ONE, &r).unwrap_err();
        assert_eq!(
            skip,
            SkipReason::BelowMinNotional {
                notional: d("4"),
                min: d("5")
            }
        );
        assert_eq!(skip.code(), "below_min_notional");
        // Exactly the minimum value passes: 0.25 → 0.2 at 25 = 5 USDT.
        assert_eq!(
            qty(size(&ask(QuantityType::Base, "0.25"), &at("25"), Scale::ONE, &r)),
            d("0.2")
        );
        // No price known: the notional check is left to the exchange.
        assert_eq!(check_minimums(d("0.2"), false, None, &r), Ok(()));
    }
}
