//! Position sync (`target_position`): from the account's live signed position and the strategy's
//! target, the orders that bring the account to target × multiplier (capped at `max_qty` in
//! absolute size): a reduce-only leg for the part that reduces, an opening leg for the part that
//! opens. A reversal has both. Each leg has its own order row (key: signal, user, leg), so a
//! retried signal still sends each leg once (docs/trading-v2-executor.md#position-sync).

use rust_decimal::Decimal;

use super::rules::InstrumentRules;
use super::sizing::{Scale, check_minimums};
use super::skip::SkipReason;

/// Which part of a signal's trade an order row is; part of the row's unique key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum LegKind {
    /// The one order of a signal that is not a target sync.
    #[default]
    Single,
    /// Reduce-only: the part of a target sync that shrinks or closes the position.
    Reduce,
    /// The part of a target sync that opens or grows the position.
    Open,
}

impl LegKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LegKind::Single => "single",
            LegKind::Reduce => "reduce",
            LegKind::Open => "open",
        }
    }
}

/// One leg: its side and size, or why it is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg {
    pub kind: LegKind,
    pub buy: bool,
    pub qty: Result<Decimal, SkipReason>,
}

impl Leg {
    pub fn reduce_only(&self) -> bool {
        self.kind == LegKind::Reduce
    }
}

/// The legs to reach the target; `Err(AtTarget)` when the account already holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPlan {
    /// target × multiplier, capped and rounded towards zero to the step.
    pub scaled_target: Decimal,
    /// Reduce before open, the order they are sent in (the reduce frees the margin the open needs).
    pub legs: Vec<Leg>,
}

/// `position` and `target` are signed (positive long). `price` values the opening leg for the
/// minimum-notional check; `market` picks the largest single order allowed.
pub fn plan(
    position: Decimal,
    target: Decimal,
    scale: Scale,
    rules: &InstrumentRules,
    price: Option<Decimal>,
    market: bool,
) -> Result<TargetPlan, SkipReason> {
    let scaled = rules.qty_down(scale.apply(target));
    if scaled == position {
        return Err(SkipReason::AtTarget { position });
    }
    let same_direction =
        position.is_zero() || scaled.is_zero() || (position > Decimal::ZERO) == (scaled > Decimal::ZERO);
    let (reduce, open) = if !same_direction {
        // A reversal: close all, then open the other way.
        (position.abs(), scaled.abs())
    } else if scaled.abs() < position.abs() || scaled.is_zero() {
        (position.abs() - scaled.abs(), Decimal::ZERO)
    } else {
        (Decimal::ZERO, scaled.abs() - position.abs())
    };
    let mut legs = Vec::with_capacity(2);
    if reduce > Decimal::ZERO {
        // Reduce-only orders above the maximum are split by Bybit itself; the step still applies.
        let qty = rules.qty_down(reduce);
        legs.push(Leg {
            kind: LegKind::Reduce,
            buy: position < Decimal::ZERO,
            qty: check_minimums(qty, true, price, rules).map(|()| qty),
        });
    }
    if open > Decimal::ZERO {
        // Capped at the largest order: the rest heals at the next alert.
        let qty = rules.qty_down(open.min(rules.max_qty(market)));
        legs.push(Leg {
            kind: LegKind::Open,
            buy: scaled > Decimal::ZERO,
            qty: check_minimums(qty, false, price, rules).map(|()| qty),
        });
    }
    Ok(TargetPlan {
        scaled_target: scaled,
        legs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trade::d;
    use crate::trade::rules::avax;

    fn legs(
        position: &str,
        target: &str,
        multiplier: &str,
        cap: Option<&str>,
    ) -> Vec<(LegKind, bool, String)> {
        let scale = Scale {
            multiplier: d(multiplier),
            max_qty: cap.map(d),
        };
        plan(d(position), d(target), scale, &avax(), Some(d("20")), true)
            .expect("a plan")
            .legs
            .into_iter()
            .map(|leg| {
                (
                    leg.kind,
                    leg.buy,
                    leg.qty.map(|q| q.to_string()).unwrap_or_else(|e| e.code().into()),
                )
            })
            .collect()
    }

    #[test]
    fn flat_to_long_and_short_opens() {
        assert_eq!(legs("0", "2", "1", None), [(LegKind::Open, true, "2".into())]);
        assert_eq!(legs("0", "-2", "1.5", None), [(LegKind::Open, false, "3".into())]);
    }

    #[test]
    fn a_missed_alert_heals_by_trading_the_difference() {
        // The strategy went 1 → 3 while the account missed the alert and still holds 1.
        assert_eq!(legs("1", "3", "1", None), [(LegKind::Open, true, "2".into())]);
        // Scaled ×2: the account should hold 6.
        assert_eq!(legs("1", "3", "2", None), [(LegKind::Open, true, "5".into())]);
        // A manual extra buy to 5: target 3 reduces by 2.
        assert_eq!(legs("5", "3", "1", None), [(LegKind::Reduce, false, "2".into())]);
        assert_eq!(legs("-5", "-3", "1", None), [(LegKind::Reduce, true, "2".into())]);
    }

    #[test]
    fn flat_target_closes_everything_reduce_only() {
        assert_eq!(
            legs("2.5", "0", "3", None),
            [(LegKind::Reduce, false, "2.5".into())]
        );
        assert_eq!(
            legs("-0.7", "0", "1", None),
            [(LegKind::Reduce, true, "0.7".into())]
        );
    }

    #[test]
    fn a_reversal_closes_then_opens() {
        assert_eq!(
            legs("2", "-3", "1", None),
            [
                (LegKind::Reduce, false, "2".into()),
                (LegKind::Open, false, "3".into())
            ]
        );
        assert_eq!(
            legs("-1", "1", "2", None),
            [
                (LegKind::Reduce, true, "1".into()),
                (LegKind::Open, true, "2".into())
            ]
        );
    }

    #[test]
    fn the_cap_bounds_the_target_not_the_difference() {
        // Target 10 × 2 = 20, capped at 4; holding 3: buy 1.
        assert_eq!(
            legs("3", "10", "2", Some("4")),
            [(LegKind::Open, true, "1".into())]
        );
        // Short side capped the same way.
        assert_eq!(
            legs("3", "-10", "1", Some("4")),
            [
                (LegKind::Reduce, false, "3".into()),
                (LegKind::Open, false, "4".into())
            ]
        );
        let scale = Scale {
            multiplier: d("1"),
            max_qty: Some(d("4")),
        };
        assert_eq!(
            plan(d("4"), d("10"), scale, &avax(), None, true),
            Err(SkipReason::AtTarget { position: d("4") })
        );
    }

    #[test]
    fn rounding_and_minimums_apply_to_each_leg() {
        // 1.234 × 1 rounds to 1.2 towards zero; holding 1.2 is at target.
        let at = plan(d("1.2"), d("1.234"), Scale::ONE, &avax(), Some(d("20")), true);
        assert_eq!(at, Err(SkipReason::AtTarget { position: d("1.2") }));
        // Opening 0.1 at 20 = 2 USDT < 5: the open leg is skipped with its reason.
        assert_eq!(
            legs("1", "1.1", "1", None),
            [(LegKind::Open, true, "below_min_notional".into())]
        );
        // A reduce of 0.1 is fine: the minimum value applies only to opening orders.
        assert_eq!(
            legs("1.1", "1", "1", None),
            [(LegKind::Reduce, false, "0.1".into())]
        );
        // The opening leg is capped at the largest market order.
        assert_eq!(
            legs("0", "20000", "1", None),
            [(LegKind::Open, true, "10000".into())]
        );
    }
}
