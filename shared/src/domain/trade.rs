//! The trading language v2 past the webhook edge: how much to trade, how to enter, and what
//! protection to keep on the exchange (docs/api.md#webhook-body-v2).
//!
//! The webhook parser builds a [`TradeSpec`]; the signal row keeps it (JSONB, decimals as strings,
//! so nothing passes through a float); the executor reads it back. Every value here was validated
//! at the edge, so the constructors are the only place a rule about a single field lives; rules
//! about two fields together (`limit_price` needs `order_type=limit`, ...) live in the parser.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{DecimalError, MAX_DECIMAL_PLACES, Price, parse_positive_decimal};

/// What `quantity` counts. The subscription's multiplier scales every type and `max_qty` caps the
/// result; the instrument's qtyStep, minOrderQty and minNotional apply after.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantityType {
    /// Coin units, as in v1 bodies.
    #[default]
    Base,
    /// Notional in USDT at the last price.
    Usdt,
    /// Percent of the account's USDT equity, times leverage.
    EquityPercent,
    /// Percent of equity lost if `stop_loss` is hit (needs `stop_loss`).
    RiskPercent,
    /// Percent of the current position (reduce-only).
    PositionPercent,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    #[default]
    Market,
    Limit,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeInForce {
    #[default]
    Gtc,
    Ioc,
    Fok,
    PostOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarginMode {
    Cross,
    Isolated,
}

macro_rules! text_enum {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
            /// Every accepted spelling, for error messages.
            pub const NAMES: &'static [&'static str] = &[$($text),+];
        }
        impl FromStr for $ty {
            type Err = ();
            fn from_str(text: &str) -> Result<Self, ()> {
                match text.to_ascii_lowercase().as_str() { $($text => Ok($ty::$variant),)+ _ => Err(()) }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

text_enum!(QuantityType { Base => "base", Usdt => "usdt", EquityPercent => "equity_percent",
    RiskPercent => "risk_percent", PositionPercent => "position_percent" });
text_enum!(OrderType { Market => "market", Limit => "limit" });
text_enum!(TimeInForce { Gtc => "gtc", Ioc => "ioc", Fok => "fok", PostOnly => "post_only" });
text_enum!(MarginMode { Cross => "cross", Isolated => "isolated" });

/// A percentage: greater than zero, at most 1000 (a take profit may ask for +300%).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Percent(Decimal);

impl Percent {
    pub const MAX: Decimal = Decimal::from_parts(1000, 0, 0, false, 0);

    pub fn parse(text: &str) -> Result<Self, DecimalError> {
        let value = parse_positive_decimal(text)?;
        if value > Self::MAX {
            return Err(DecimalError::TooLarge);
        }
        Ok(Percent(value))
    }
    /// A share of a whole (of equity, of a position, of the equity risked): at most 100.
    pub fn parse_share(text: &str) -> Result<Self, DecimalError> {
        let percent = Self::parse(text)?;
        if percent.0 > Decimal::ONE_HUNDRED {
            return Err(DecimalError::AtMost(Decimal::ONE_HUNDRED));
        }
        Ok(percent)
    }
    /// A distance against the position (a stop loss, a trailing stop): below 100, since a stop
    /// 100% away from a long's entry is a price of zero.
    pub fn parse_distance(text: &str) -> Result<Self, DecimalError> {
        let percent = Self::parse(text)?;
        if percent.0 >= Decimal::ONE_HUNDRED {
            return Err(DecimalError::Below(Decimal::ONE_HUNDRED));
        }
        Ok(percent)
    }
    pub fn get(self) -> Decimal {
        self.0
    }
    /// The fraction this percent is of one (2.5 → 0.025).
    pub fn fraction(self) -> Decimal {
        self.0 / Decimal::ONE_HUNDRED
    }
}

impl fmt::Debug for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

/// A position size with a sign: negative is short, zero is flat (`target_position`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SignedQty(Decimal);

impl SignedQty {
    /// A plain decimal with an optional leading `-`; zero is allowed; the same limits on places and
    /// size as a quantity.
    pub fn parse(text: &str) -> Result<Self, DecimalError> {
        let (negative, magnitude) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let value = match parse_positive_decimal(magnitude) {
            Ok(value) => value,
            // Zero is a target ("flat"), not an error; its syntax was already checked.
            Err(DecimalError::NotPositive) => Decimal::ZERO,
            Err(other) => return Err(other),
        };
        // "-0" (as a script may print a flat position) is plain zero.
        Ok(SignedQty(if negative && !value.is_zero() {
            -value
        } else {
            value
        }))
    }
    pub fn get(self) -> Decimal {
        self.0
    }
}

impl fmt::Debug for SignedQty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignedQty({})", self.0)
    }
}

/// Leverage as Bybit takes it: from 1 to 200 (the instrument's own maximum is checked later, when
/// its rules are known), at most 2 decimal places.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Leverage(Decimal);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeverageError {
    #[error("{0}")]
    Decimal(#[from] DecimalError),
    #[error("must be between 1 and 200 with at most 2 decimal places")]
    OutOfRange,
}

impl Leverage {
    pub const MAX: Decimal = Decimal::from_parts(200, 0, 0, false, 0);

    pub fn parse(text: &str) -> Result<Self, LeverageError> {
        let value = parse_positive_decimal(text)?;
        if value < Decimal::ONE || value > Self::MAX || value.scale() > 2 {
            return Err(LeverageError::OutOfRange);
        }
        Ok(Leverage(value))
    }
    pub fn get(self) -> Decimal {
        self.0
    }
}

impl fmt::Debug for Leverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x", self.0)
    }
}

/// A take-profit or stop-loss level: an absolute price, or a percent from the entry's average
/// fill price (known only once the fill is seen, so set then).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Price(Price),
    Percent(Percent),
}

/// A trailing stop: a distance in price units or a percent of the entry price, optionally armed
/// only once the price reaches `activation_price`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailingStop {
    pub distance: Level,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_price: Option<Price>,
}

/// Move the stop loss to entry ± `offset_percent` once the mark price has moved `trigger_percent`
/// in favour. HUMBEX does this itself, once, with its state in PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakEven {
    pub trigger_percent: Percent,
    /// Zero puts the stop exactly at entry; positive locks a little profit.
    pub offset_percent: Decimal,
}

/// Everything a v2 body may add to a v1 signal. `TradeSpec::default()` is a v1 signal: a market
/// order of `quantity` coins with nothing attached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TradeSpec {
    pub quantity_type: QuantityType,
    /// The position the strategy now holds; when set, each account trades the difference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_position: Option<SignedQty>,
    pub order_type: OrderType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<Price>,
    pub time_in_force: TimeInForce,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_after_secs: Option<u32>,
    /// A conditional entry: Bybit's `triggerPrice`, its direction taken from the current price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_price: Option<Price>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub take_profit: Option<Level>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_loss: Option<Level>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trailing_stop: Option<TrailingStop>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub break_even: Option<BreakEven>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leverage: Option<Leverage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub margin_mode: Option<MarginMode>,
    /// Skip (reason `stale`) when more than this many seconds passed between the signal's own
    /// `timestamp` (or, without one, its arrival) and the moment its order would be sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lag_secs: Option<u32>,
}

impl TradeSpec {
    /// A v1 signal: stored as NULL, so the plain market order keeps its short path.
    pub fn is_plain(&self) -> bool {
        *self == TradeSpec::default()
    }

    /// Whether the entry order can carry this spec's take profit and stop loss itself (prices
    /// known before the fill); percents and trailing stops are set after the fill instead.
    pub fn protection_attaches_to_order(&self) -> bool {
        self.trailing_stop.is_none()
            && !matches!(self.take_profit, Some(Level::Percent(_)))
            && !matches!(self.stop_loss, Some(Level::Percent(_)))
    }
}

/// Most seconds a resting order may wait for `cancel_after_secs` (30 days).
pub const MAX_CANCEL_AFTER_SECS: u32 = 30 * 24 * 3600;
/// Most seconds `max_lag_secs` may allow (one day).
pub const MAX_LAG_SECS: u32 = 24 * 3600;

/// A whole number of seconds from 1 to `max` (`cancel_after_secs`, `max_lag_secs`).
pub fn parse_seconds(text: &str, max: u32) -> Result<u32, DecimalError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecimalError::NotWhole);
    }
    let value: u64 = text.parse().map_err(|_| DecimalError::AtMost(max.into()))?;
    if value == 0 {
        return Err(DecimalError::NotPositive);
    }
    u32::try_from(value)
        .ok()
        .filter(|v| *v <= max)
        .ok_or(DecimalError::AtMost(max.into()))
}

/// A strategy's defaults for its signals (admin API: `max_lag_secs`, `leverage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StrategyDefaults {
    pub max_lag_secs: Option<u32>,
    pub leverage: Option<Leverage>,
}

/// A subscription's defaults for the signals its user trades (admin API: `leverage`,
/// `margin_mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscriptionDefaults {
    pub leverage: Option<Leverage>,
    pub margin_mode: Option<MarginMode>,
}

impl TradeSpec {
    /// The spec one account trades: the signal's own field wins over its strategy's default,
    /// which wins over the subscription's (docs/api.md#defaults-and-precedence). The one home of
    /// that rule; `strategy` is the default for a user's own signal (no strategy).
    pub fn with_defaults(
        mut self,
        strategy: &StrategyDefaults,
        subscription: &SubscriptionDefaults,
    ) -> TradeSpec {
        self.leverage = self.leverage.or(strategy.leverage).or(subscription.leverage);
        self.margin_mode = self.margin_mode.or(subscription.margin_mode);
        self.max_lag_secs = self.max_lag_secs.or(strategy.max_lag_secs);
        self
    }
}

/// At most [`MAX_DECIMAL_PLACES`] places and not above [`Percent::MAX`]; zero allowed (an offset).
pub fn parse_offset_percent(text: &str) -> Result<Decimal, DecimalError> {
    match parse_positive_decimal(text) {
        Ok(value) if value > Percent::MAX => Err(DecimalError::TooLarge),
        Ok(value) => Ok(value),
        Err(DecimalError::NotPositive) => Ok(Decimal::ZERO),
        Err(other) => Err(other),
    }
}

const _: () = assert!(MAX_DECIMAL_PLACES == 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_spec_is_plain_and_round_trips_through_json() {
        assert!(TradeSpec::default().is_plain());
        let spec = TradeSpec {
            quantity_type: QuantityType::RiskPercent,
            target_position: Some(SignedQty::parse("-1.5").unwrap()),
            take_profit: Some(Level::Percent(Percent::parse("2.5").unwrap())),
            stop_loss: Some(Level::Price(Price::parse("20.1").unwrap())),
            trailing_stop: Some(TrailingStop {
                distance: Level::Price(Price::parse("0.5").unwrap()),
                activation_price: None,
            }),
            leverage: Some(Leverage::parse("10").unwrap()),
            ..TradeSpec::default()
        };
        assert!(!spec.is_plain());
        assert!(!spec.protection_attaches_to_order());
        let json = serde_json::to_string(&spec).unwrap();
        // Decimals are strings in storage, never JSON numbers (no float on the way back).
        assert!(json.contains(r#""target_position":"-1.5""#), "{json}");
        assert_eq!(serde_json::from_str::<TradeSpec>(&json).unwrap(), spec);
    }

    #[test]
    fn field_rules() {
        assert_eq!(SignedQty::parse("0").unwrap().get(), Decimal::ZERO);
        assert_eq!(SignedQty::parse("-0.25").unwrap().get().to_string(), "-0.25");
        assert_eq!(SignedQty::parse("-0").unwrap().get().to_string(), "0");
        assert!(SignedQty::parse("--1").is_err());
        assert!(SignedQty::parse("1e3").is_err());
        assert!(Percent::parse("0").is_err());
        assert!(Percent::parse("1000.5").is_err());
        assert!(Leverage::parse("0.5").is_err());
        assert!(Leverage::parse("201").is_err());
        assert!(Leverage::parse("12.345").is_err());
        assert_eq!(Leverage::parse("12.5").unwrap().get().to_string(), "12.5");
        assert_eq!(parse_offset_percent("0").unwrap(), Decimal::ZERO);
        assert_eq!("POST_ONLY".parse::<TimeInForce>(), Ok(TimeInForce::PostOnly));
        assert!("stop".parse::<OrderType>().is_err());
        assert!(Percent::parse_share("100").is_ok());
        assert_eq!(
            Percent::parse_share("100.5"),
            Err(DecimalError::AtMost(Decimal::ONE_HUNDRED))
        );
        assert!(Percent::parse_distance("99.9").is_ok());
        assert_eq!(
            Percent::parse_distance("100"),
            Err(DecimalError::Below(Decimal::ONE_HUNDRED))
        );
        assert_eq!(parse_seconds("30", 60), Ok(30));
        assert_eq!(parse_seconds("0", 60), Err(DecimalError::NotPositive));
        assert_eq!(parse_seconds("61", 60), Err(DecimalError::AtMost(60.into())));
        assert_eq!(
            parse_seconds("99999999999999999999999", 60),
            Err(DecimalError::AtMost(60.into()))
        );
        for bad in ["1.5", "-1", "", "1e3", " 1"] {
            assert_eq!(parse_seconds(bad, 60), Err(DecimalError::NotWhole), "{bad:?}");
        }
    }

    fn lev(text: &str) -> Option<Leverage> {
        Some(Leverage::parse(text).unwrap())
    }

    #[test]
    fn the_signal_wins_over_the_strategy_which_wins_over_the_subscription() {
        let strategy = StrategyDefaults {
            max_lag_secs: Some(30),
            leverage: lev("5"),
        };
        let subscription = SubscriptionDefaults {
            leverage: lev("3"),
            margin_mode: Some(MarginMode::Isolated),
        };
        // Nothing in the signal: the strategy's leverage and lag, the subscription's margin mode.
        let spec = TradeSpec::default().with_defaults(&strategy, &subscription);
        assert_eq!(spec.leverage, lev("5"));
        assert_eq!(spec.max_lag_secs, Some(30));
        assert_eq!(spec.margin_mode, Some(MarginMode::Isolated));
        // The signal's own fields win.
        let own = TradeSpec {
            leverage: lev("10"),
            margin_mode: Some(MarginMode::Cross),
            max_lag_secs: Some(5),
            ..TradeSpec::default()
        };
        assert_eq!(own.clone().with_defaults(&strategy, &subscription), own);
        // Without a strategy default, the subscription's leverage applies.
        let spec = TradeSpec::default().with_defaults(&StrategyDefaults::default(), &subscription);
        assert_eq!(spec.leverage, lev("3"));
        assert_eq!(spec.max_lag_secs, None);
        // No defaults at all change nothing, and a plain spec stays plain.
        let plain = TradeSpec::default().with_defaults(&Default::default(), &Default::default());
        assert!(plain.is_plain());
        // Other fields are never touched by defaults.
        let limit = TradeSpec {
            order_type: OrderType::Limit,
            limit_price: Some(Price::parse("20").unwrap()),
            ..TradeSpec::default()
        };
        let merged = limit.clone().with_defaults(&strategy, &subscription);
        assert_eq!(merged.order_type, OrderType::Limit);
        assert_eq!(merged.limit_price, limit.limit_price);
    }
}
