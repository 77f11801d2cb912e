//! Leverage and margin mode before an order: set only when they differ from what the account has
//! (no REST call otherwise), and Bybit's 110043 ("leverage not modified") counts as set.

use humbex_shared::domain::trade::{Leverage, MarginMode};
use rust_decimal::Decimal;

use super::rules::InstrumentRules;
use super::skip::SkipReason;

/// Bybit's "not modified" answer to set-leverage: the account already has it.
pub const NOT_MODIFIED: i64 = 110043;

/// Whether a set-leverage (or switch-margin-mode) answer means the account now has what was asked.
pub fn is_set(ret_code: i64) -> bool {
    ret_code == 0 || ret_code == NOT_MODIFIED
}

/// What must change on the account before the order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountChange {
    pub leverage: Option<Decimal>,
    pub margin_mode: Option<MarginMode>,
}

impl AccountChange {
    pub fn is_empty(&self) -> bool {
        *self == AccountChange::default()
    }
}

/// `wanted_*` comes from the precedence signal > strategy > subscription; `current_*` from the
/// account's position (None when unknown: then it is set, and 110043 makes that harmless).
pub fn change(
    wanted_leverage: Option<Leverage>,
    current_leverage: Option<Decimal>,
    wanted_mode: Option<MarginMode>,
    current_mode: Option<MarginMode>,
    rules: &InstrumentRules,
) -> Result<AccountChange, SkipReason> {
    let leverage = match wanted_leverage {
        None => None,
        Some(wanted) => {
            let wanted = wanted.get();
            if let Some(max) = rules.max_leverage
                && wanted > max
            {
                return Err(SkipReason::LeverageAboveMax { wanted, max });
            }
            (current_leverage != Some(wanted)).then_some(wanted)
        }
    };
    let margin_mode = wanted_mode.filter(|mode| current_mode != Some(*mode));
    Ok(AccountChange {
        leverage,
        margin_mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trade::d;
    use crate::trade::rules::avax;

    #[test]
    fn only_what_differs_is_set() {
        let ten = Some(Leverage::parse("10").unwrap());
        let rules = avax();
        assert!(change(None, Some(d("5")), None, None, &rules).unwrap().is_empty());
        assert!(
            change(
                ten,
                Some(d("10")),
                Some(MarginMode::Cross),
                Some(MarginMode::Cross),
                &rules
            )
            .unwrap()
            .is_empty()
        );
        assert_eq!(
            change(
                ten,
                Some(d("5")),
                Some(MarginMode::Isolated),
                Some(MarginMode::Cross),
                &rules
            )
            .unwrap(),
            AccountChange {
                leverage: Some(d("10")),
                margin_mode: Some(MarginMode::Isolated)
            }
        );
        // Unknown current values are set; 110043 then means "already so".
        assert_eq!(
            change(ten, None, None, None, &rules).unwrap().leverage,
            Some(d("10"))
        );
        assert!(is_set(0) && is_set(NOT_MODIFIED) && !is_set(110013));
    }

    #[test]
    fn above_the_instrument_maximum_is_a_skip() {
        let wanted = Some(Leverage::parse("75").unwrap());
        assert_eq!(
            change(wanted, None, None, None, &avax()),
            Err(SkipReason::LeverageAboveMax {
                wanted: d("75"),
                max: d("50")
            })
        );
    }
}
