//! Why HUMBEX sends no order for an account: a stable code for machines and a sentence a trader can
//! act on (the order row keeps both, as `error_code` and `error`, with status `skipped`).

use std::fmt;

use rust_decimal::Decimal;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// More than `max_lag_secs` passed between the signal's timestamp and the send.
    Stale { lag_secs: i64, max_lag_secs: u32 },
    /// After multiplier, cap and rounding down to the step, less than the instrument's minimum.
    BelowMinQty {
        qty: Decimal,
        min: Decimal,
        step: Decimal,
    },
    /// qty × price below the instrument's minimum order value (Bybit would refuse with 110094).
    BelowMinNotional { notional: Decimal, min: Decimal },
    /// A money-based size needs the account's equity and none is known (or it is zero).
    NoEquity,
    /// A money-based size needs a price and the signal gave none and no last price is known.
    NoPrice,
    /// `position_percent` (or a reduce) with no open position.
    NoPosition,
    /// `risk_percent` needs a stop loss on the losing side of the entry.
    StopLossWrongSide { stop_loss: Decimal, entry: Decimal },
    /// `risk_percent` without a stop loss (the parser refuses it; kept for a defensive check).
    RiskWithoutStopLoss,
    /// The account already holds the target position.
    AtTarget { position: Decimal },
    /// The signal asks for more leverage than the instrument allows.
    LeverageAboveMax { wanted: Decimal, max: Decimal },
    /// A take profit, stop loss or trailing distance that comes out at or below zero.
    ProtectionOutOfRange { field: &'static str },
    /// The alert names a symbol the exchange does not list.
    UnknownSymbol { symbol: String },
    /// The exchange refused a call the order depends on (set-leverage, margin mode): Bybit's
    /// code and message, as it gave them.
    Exchange { code: String, message: String },
}

impl SkipReason {
    /// What `orders.error_code` keeps: Bybit's own code for an exchange refusal, else [`Self::code`].
    pub fn stored_code(&self) -> String {
        match self {
            SkipReason::Exchange { code, .. } => code.clone(),
            other => other.code().to_owned(),
        }
    }

    /// The stable code of the kind of reason.
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::Stale { .. } => "stale",
            SkipReason::BelowMinQty { .. } => "below_min_qty",
            SkipReason::BelowMinNotional { .. } => "below_min_notional",
            SkipReason::NoEquity => "no_equity",
            SkipReason::NoPrice => "no_price",
            SkipReason::NoPosition => "no_position",
            SkipReason::StopLossWrongSide { .. } => "stop_loss_wrong_side",
            SkipReason::RiskWithoutStopLoss => "risk_without_stop_loss",
            SkipReason::AtTarget { .. } => "at_target",
            SkipReason::LeverageAboveMax { .. } => "leverage_above_max",
            SkipReason::ProtectionOutOfRange { .. } => "protection_out_of_range",
            SkipReason::UnknownSymbol { .. } => "unknown_symbol",
            SkipReason::Exchange { .. } => "exchange_refused",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Stale {
                lag_secs,
                max_lag_secs,
            } => write!(
                f,
                "stale: {lag_secs} s passed since the signal's timestamp, more than max_lag_secs {max_lag_secs}; \
                 check the alert's timestamp or raise max_lag_secs"
            ),
            SkipReason::BelowMinQty { qty, min, step } => write!(
                f,
                "quantity {qty} is below the minimum order quantity {min} after sizing and rounding down \
                 to the step {step}; raise quantity or the multiplier"
            ),
            SkipReason::BelowMinNotional { notional, min } => write!(
                f,
                "order value {notional} USDT is below the exchange's minimum {min} USDT; raise quantity \
                 or the multiplier"
            ),
            SkipReason::NoEquity => f.write_str(
                "the account's USDT equity is unknown or zero, so a size in percent of equity or risk \
                 cannot be computed; fund the account or use quantity_type base",
            ),
            SkipReason::NoPrice => f.write_str(
                "no price is known for this symbol to convert the size; send price or limit_price",
            ),
            SkipReason::NoPosition => f.write_str("no open position on this symbol to reduce"),
            SkipReason::StopLossWrongSide { stop_loss, entry } => write!(
                f,
                "stop_loss {stop_loss} is not on the losing side of the entry price {entry}, so \
                 risk_percent cannot size the order"
            ),
            SkipReason::RiskWithoutStopLoss => f.write_str("quantity_type risk_percent needs a stop_loss"),
            SkipReason::AtTarget { position } => write!(
                f,
                "the account already holds the target position {position}; nothing to trade"
            ),
            SkipReason::LeverageAboveMax { wanted, max } => write!(
                f,
                "leverage {wanted} is above the instrument's maximum {max}; lower leverage"
            ),
            SkipReason::ProtectionOutOfRange { field } => write!(
                f,
                "{field} comes out at or below zero from the entry price; lower its percent"
            ),
            SkipReason::UnknownSymbol { symbol } => write!(
                f,
                "{symbol} is not a linear USDT contract the exchange lists: check the alert's symbol"
            ),
            SkipReason::Exchange { code, message } => {
                write!(
                    f,
                    "the exchange refused a setting the order needs ({code}): {message}"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trade::d;

    #[test]
    fn every_reason_has_a_code_and_names_what_to_change() {
        let reasons = [
            SkipReason::Stale {
                lag_secs: 90,
                max_lag_secs: 30,
            },
            SkipReason::BelowMinQty {
                qty: d("0"),
                min: d("0.1"),
                step: d("0.1"),
            },
            SkipReason::BelowMinNotional {
                notional: d("2.04"),
                min: d("5"),
            },
            SkipReason::NoEquity,
            SkipReason::NoPrice,
            SkipReason::NoPosition,
            SkipReason::StopLossWrongSide {
                stop_loss: d("21"),
                entry: d("20"),
            },
            SkipReason::RiskWithoutStopLoss,
            SkipReason::AtTarget { position: d("1") },
            SkipReason::LeverageAboveMax {
                wanted: d("75"),
                max: d("50"),
            },
            SkipReason::ProtectionOutOfRange { field: "stop_loss" },
            SkipReason::UnknownSymbol {
                symbol: "FOOUSDT".into(),
            },
        ];
        let mut codes: Vec<_> = reasons.iter().map(SkipReason::code).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), reasons.len(), "codes are distinct");
        assert_eq!(reasons[0].code(), "stale");
        assert!(reasons[0].to_string().contains("max_lag_secs 30"));
        assert!(reasons[2].to_string().contains("minimum 5 USDT"));
        assert!(reasons[9].to_string().contains("maximum 50"));
    }
}
