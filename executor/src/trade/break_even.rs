//! Break-even: once the mark price has moved `trigger_percent` in favour of the entry, the stop
//! loss goes to entry ± `offset_percent`. The trigger and the new stop are computed once, when the
//! position's entry is known, and kept in PostgreSQL with the state "fired", so the move happens
//! once and survives a restart (store: `break_even`; docs/trading-v2-executor.md#break-even).

use humbex_shared::domain::trade::BreakEven;
use rust_decimal::Decimal;

use super::rules::{InstrumentRules, Toward};

/// The two prices a break-even watch needs, fixed when it is armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Armed {
    pub long: bool,
    pub entry: Decimal,
    /// The mark price at (or beyond) which the stop moves.
    pub trigger_price: Decimal,
    /// Where the stop goes.
    pub stop_price: Decimal,
}

/// Arm a watch for a position entered at `entry`. The trigger rounds away from the entry (it
/// fires on a move at least as large as asked); the stop rounds towards it (never a looser lock
/// than the mark has already passed).
pub fn arm(rule: BreakEven, entry: Decimal, long: bool, rules: &InstrumentRules) -> Armed {
    let trigger = rule.trigger_percent.fraction();
    let offset = rule.offset_percent / Decimal::ONE_HUNDRED;
    let (trigger_price, stop_price) = if long {
        (
            rules.price(entry * (Decimal::ONE + trigger), Toward::Up),
            rules.price(entry * (Decimal::ONE + offset), Toward::Down),
        )
    } else {
        (
            rules.price(entry * (Decimal::ONE - trigger), Toward::Down),
            rules.price(entry * (Decimal::ONE - offset), Toward::Up),
        )
    };
    Armed {
        long,
        entry,
        trigger_price,
        stop_price,
    }
}

/// What to do on a mark price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Not there yet.
    Wait,
    /// Move the stop loss to this price (claim the watch first: it fires once).
    Move(Decimal),
    /// Reached, but the current stop already protects at least as much: mark fired, send nothing.
    AlreadyProtected,
}

pub fn decide(armed: &Armed, mark: Decimal, current_stop: Option<Decimal>) -> Decision {
    let reached = if armed.long {
        mark >= armed.trigger_price
    } else {
        mark <= armed.trigger_price
    };
    if !reached {
        return Decision::Wait;
    }
    let better = match current_stop {
        None => true,
        Some(stop) if stop <= Decimal::ZERO => true,
        Some(stop) if armed.long => armed.stop_price > stop,
        Some(stop) => armed.stop_price < stop,
    };
    if better {
        Decision::Move(armed.stop_price)
    } else {
        Decision::AlreadyProtected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trade::d;
    use crate::trade::rules::avax;
    use humbex_shared::domain::trade::Percent;

    fn rule(trigger: &str, offset: &str) -> BreakEven {
        BreakEven {
            trigger_percent: Percent::parse(trigger).unwrap(),
            offset_percent: d(offset),
        }
    }

    #[test]
    fn a_long_moves_its_stop_to_entry_plus_offset_once_the_mark_is_up_enough() {
        let armed = arm(rule("1", "0.1"), d("20"), true, &avax());
        assert_eq!(armed.trigger_price, d("20.2"));
        assert_eq!(armed.stop_price, d("20.02"));
        assert_eq!(decide(&armed, d("20.199"), Some(d("19"))), Decision::Wait);
        assert_eq!(
            decide(&armed, d("20.2"), Some(d("19"))),
            Decision::Move(d("20.02"))
        );
        assert_eq!(decide(&armed, d("25"), None), Decision::Move(d("20.02")));
        // Bybit reports "no stop" as 0.
        assert_eq!(decide(&armed, d("25"), Some(d("0"))), Decision::Move(d("20.02")));
        // A stop already above break-even is never pulled back.
        assert_eq!(
            decide(&armed, d("25"), Some(d("20.5"))),
            Decision::AlreadyProtected
        );
    }

    #[test]
    fn a_short_mirrors_it() {
        let armed = arm(rule("2", "0"), d("20.4567"), false, &avax());
        // 20.4567 × 0.98 = 20.047566 → 20.047 (down: at least the move asked); stop at entry → 20.457.
        assert_eq!(armed.trigger_price, d("20.047"));
        assert_eq!(armed.stop_price, d("20.457"));
        assert_eq!(decide(&armed, d("20.048"), Some(d("21"))), Decision::Wait);
        assert_eq!(
            decide(&armed, d("20"), Some(d("21"))),
            Decision::Move(d("20.457"))
        );
        assert_eq!(
            decide(&armed, d("20"), Some(d("20.3"))),
            Decision::AlreadyProtected
        );
    }
}
