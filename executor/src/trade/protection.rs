//! Take profit, stop loss and trailing stop as prices the exchange takes: a percent becomes a price
//! from the entry's average fill price, rounded to the tick towards the entry (never a farther
//! target or a looser stop than asked); absolute prices pass as given. Whether they can ride on the
//! entry order or must be set with trading-stop after the fill is decided here too
//! (docs/trading-v2-executor.md#protection).

use humbex_shared::domain::trade::{Level, TradeSpec, TrailingStop};
use rust_decimal::Decimal;

use super::rules::{InstrumentRules, Toward};
use super::skip::SkipReason;

/// What is set on the exchange for one position; `None` leaves that part alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Protection {
    pub take_profit: Option<Decimal>,
    pub stop_loss: Option<Decimal>,
    /// Trailing distance in price units (Bybit `trailingStop`).
    pub trailing_stop: Option<Decimal>,
    /// Bybit `activePrice`: the trailing stop is armed once the price reaches it.
    pub trailing_activation: Option<Decimal>,
}

impl Protection {
    pub fn is_empty(&self) -> bool {
        *self == Protection::default()
    }
}

/// The prices for a position entered at `entry` (average fill price), long or short.
pub fn resolve(
    spec: &TradeSpec,
    entry: Decimal,
    long: bool,
    rules: &InstrumentRules,
) -> Result<Protection, SkipReason> {
    Ok(Protection {
        take_profit: spec
            .take_profit
            .map(|level| level_price(level, entry, long, Kind::TakeProfit, rules))
            .transpose()?,
        stop_loss: spec
            .stop_loss
            .map(|level| level_price(level, entry, long, Kind::StopLoss, rules))
            .transpose()?,
        trailing_stop: spec
            .trailing_stop
            .map(|trail| trailing_distance(trail, entry, rules))
            .transpose()?,
        trailing_activation: spec
            .trailing_stop
            .and_then(|t| t.activation_price)
            .map(|p| p.get()),
    })
}

/// The take profit and stop loss that can ride on the entry order itself (Bybit's order-attached
/// TP/SL, no extra call): only when both are absolute prices and there is no trailing stop.
pub fn attachable(spec: &TradeSpec) -> Option<Protection> {
    if !spec.protection_attaches_to_order() {
        return None;
    }
    let price = |level: Option<Level>| match level {
        Some(Level::Price(p)) => Some(p.get()),
        _ => None,
    };
    let protection = Protection {
        take_profit: price(spec.take_profit),
        stop_loss: price(spec.stop_loss),
        ..Protection::default()
    };
    (!protection.is_empty()).then_some(protection)
}

/// Whether the spec asks for any protection that must be set after the fill (percents, trailing).
pub fn needs_trading_stop(spec: &TradeSpec) -> bool {
    let any = spec.take_profit.is_some() || spec.stop_loss.is_some() || spec.trailing_stop.is_some();
    any && !spec.protection_attaches_to_order()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    TakeProfit,
    StopLoss,
}

fn level_price(
    level: Level,
    entry: Decimal,
    long: bool,
    kind: Kind,
    rules: &InstrumentRules,
) -> Result<Decimal, SkipReason> {
    let percent = match level {
        Level::Price(price) => return Ok(price.get()),
        Level::Percent(p) => p.fraction(),
    };
    // A long's take profit is above the entry and its stop below; a short's the other way.
    let above = (kind == Kind::TakeProfit) == long;
    let (raw, toward) = if above {
        (entry * (Decimal::ONE + percent), Toward::Down)
    } else {
        (entry * (Decimal::ONE - percent), Toward::Up)
    };
    let price = rules.price(raw, toward);
    if price <= Decimal::ZERO {
        return Err(SkipReason::ProtectionOutOfRange {
            field: match kind {
                Kind::TakeProfit => "take_profit",
                Kind::StopLoss => "stop_loss",
            },
        });
    }
    Ok(price)
}

/// The trailing distance in price units: a percent of the entry rounded down to the tick (a tighter
/// trail, never a looser one), at least one tick.
fn trailing_distance(
    trail: TrailingStop,
    entry: Decimal,
    rules: &InstrumentRules,
) -> Result<Decimal, SkipReason> {
    let distance = match trail.distance {
        Level::Price(p) => p.get(),
        Level::Percent(p) => rules
            .price(entry * p.fraction(), Toward::Down)
            .max(rules.tick_size),
    };
    if distance <= Decimal::ZERO {
        return Err(SkipReason::ProtectionOutOfRange {
            field: "trailing_stop",
        });
    }
    Ok(distance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trade::d;
    use crate::trade::rules::avax;
    use humbex_shared::domain::Price;
    use humbex_shared::domain::trade::Percent;

    fn pct(text: &str) -> Level {
        Level::Percent(Percent::parse(text).unwrap())
    }
    fn price(text: &str) -> Level {
        Level::Price(Price::parse(text).unwrap())
    }

    #[test]
    fn percents_become_prices_from_the_fill_rounded_towards_the_entry() {
        let spec = TradeSpec {
            take_profit: Some(pct("3")),
            stop_loss: Some(pct("1.5")),
            ..TradeSpec::default()
        };
        // Long at 20.4567: TP 21.070401 → 21.070 (down), SL 20.1498... → 20.150 (up).
        let long = resolve(&spec, d("20.4567"), true, &avax()).unwrap();
        assert_eq!(long.take_profit, Some(d("21.07")));
        assert_eq!(long.stop_loss, Some(d("20.15")));
        // Short: TP below (rounded up), SL above (rounded down).
        let short = resolve(&spec, d("20.4567"), false, &avax()).unwrap();
        assert_eq!(short.take_profit, Some(d("19.843")));
        assert_eq!(short.stop_loss, Some(d("20.763")));
    }

    #[test]
    fn prices_pass_as_given_and_attach_to_the_order() {
        let spec = TradeSpec {
            take_profit: Some(price("25")),
            stop_loss: Some(price("18.5")),
            ..TradeSpec::default()
        };
        let attached = attachable(&spec).expect("prices attach");
        assert_eq!(attached.take_profit, Some(d("25")));
        assert_eq!(attached.stop_loss, Some(d("18.5")));
        assert!(!needs_trading_stop(&spec));
        assert_eq!(resolve(&spec, d("20"), true, &avax()).unwrap(), attached);
        assert_eq!(attachable(&TradeSpec::default()), None);
        assert!(!needs_trading_stop(&TradeSpec::default()));
    }

    #[test]
    fn percents_and_trailing_wait_for_the_fill() {
        let spec = TradeSpec {
            stop_loss: Some(pct("2")),
            ..TradeSpec::default()
        };
        assert_eq!(attachable(&spec), None);
        assert!(needs_trading_stop(&spec));
        let trail = TradeSpec {
            trailing_stop: Some(TrailingStop {
                distance: pct("1"),
                activation_price: Some(Price::parse("21").unwrap()),
            }),
            ..TradeSpec::default()
        };
        assert!(needs_trading_stop(&trail));
        let p = resolve(&trail, d("20.4567"), true, &avax()).unwrap();
        // 1% of 20.4567 = 0.204567 → 0.204.
        assert_eq!(p.trailing_stop, Some(d("0.204")));
        assert_eq!(p.trailing_activation, Some(d("21")));
        // A distance below one tick becomes one tick.
        let tiny = TradeSpec {
            trailing_stop: Some(TrailingStop {
                distance: pct("0.001"),
                activation_price: None,
            }),
            ..TradeSpec::default()
        };
        assert_eq!(
            resolve(&tiny, d("20"), true, &avax()).unwrap().trailing_stop,
            Some(d("0.001"))
        );
    }

    #[test]
    fn a_stop_past_zero_is_refused_with_the_field() {
        let spec = TradeSpec {
            stop_loss: Some(pct("100")),
            ..TradeSpec::default()
        };
        assert_eq!(
            resolve(&spec, d("20"), true, &avax()),
            Err(SkipReason::ProtectionOutOfRange { field: "stop_loss" })
        );
        // The same percent on a short is a stop at twice the entry: fine.
        assert_eq!(
            resolve(&spec, d("20"), false, &avax()).unwrap().stop_loss,
            Some(d("40"))
        );
    }
}
