//! Domain types parsed at the edge: symbols, quantities, prices, actions and statuses.
//!
//! Past the HTTP edge nothing is a raw string or a float: a quantity is a [`Qty`] (a decimal with at
//! most 8 places, never passed through f64) and a symbol is a [`Symbol`] in Bybit's spelling.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub mod trade;

/// Most decimal places a quantity or price may carry (Bybit's finest step is coarser than this).
pub const MAX_DECIMAL_PLACES: u32 = 8;

/// A Bybit linear symbol such as `AVAXUSDT`: 2 to 20 characters of `A-Z0-9`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    #[error("must be 2 to 20 letters and digits after removing an exchange prefix and a .P suffix")]
    Malformed,
    #[error("exchange prefix {0:?} is not BYBIT")]
    ForeignExchange(String),
}

impl Symbol {
    /// Normalise what TradingView and people write (`AVAXUSDT`, `AVAXUSDT.P`, `BYBIT:AVAXUSDT.P`,
    /// lower case) into Bybit's symbol. Anything outside ASCII letters and digits is refused, so a
    /// look-alike letter from another alphabet never becomes a different market.
    pub fn parse(input: &str) -> Result<Self, SymbolError> {
        let rest = match input.split_once(':') {
            Some((exchange, rest)) => {
                if !exchange.eq_ignore_ascii_case("BYBIT") {
                    return Err(SymbolError::ForeignExchange(exchange.chars().take(20).collect()));
                }
                rest
            }
            None => input,
        };
        let rest = rest
            .strip_suffix(".P")
            .or_else(|| rest.strip_suffix(".p"))
            .unwrap_or(rest);
        let valid = (2..=20).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid {
            return Err(SymbolError::Malformed);
        }
        Ok(Symbol(rest.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Spelled like a Bybit linear USDT perpetual: a base of at least one character, then USDT.
    pub fn is_linear_usdt(&self) -> bool {
        self.0.len() > 4 && self.0.ends_with("USDT")
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({})", self.0)
    }
}

impl FromStr for Symbol {
    type Err = SymbolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Symbol::parse(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("must be a plain decimal number such as 1.5 (no sign, exponent or spaces)")]
    Syntax,
    #[error("must have at most {MAX_DECIMAL_PLACES} decimal places")]
    TooPrecise,
    #[error("must be greater than zero")]
    NotPositive,
    #[error("is too large")]
    TooLarge,
    #[error("must be at most {0}")]
    AtMost(Decimal),
    #[error("must be below {0}")]
    Below(Decimal),
    #[error("must be a whole number")]
    NotWhole,
}

/// Parse a strictly positive decimal written as plain digits with an optional fraction.
///
/// Scientific notation, signs, leading `.` and more than 8 places are refused rather than rounded:
/// a quantity is money, and a silently changed number is worse than a refusal.
pub fn parse_positive_decimal(text: &str) -> Result<Decimal, DecimalError> {
    let (int_part, frac_part) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text, None),
    };
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only(int_part) || frac_part.is_some_and(|f| !digits_only(f)) {
        return Err(DecimalError::Syntax);
    }
    if frac_part.is_some_and(|f| f.len() > MAX_DECIMAL_PLACES as usize) {
        return Err(DecimalError::TooPrecise);
    }
    // 12 integer digits keep every value far inside both Decimal and numeric(38, 8).
    if int_part.trim_start_matches('0').len() > 12 {
        return Err(DecimalError::TooLarge);
    }
    let value = Decimal::from_str(text).map_err(|_| DecimalError::Syntax)?;
    if value <= Decimal::ZERO {
        return Err(DecimalError::NotPositive);
    }
    Ok(value.normalize())
}

/// An order or signal quantity: positive, at most 8 decimal places.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Qty(Decimal);

impl Qty {
    pub fn parse(text: &str) -> Result<Self, DecimalError> {
        parse_positive_decimal(text).map(Qty)
    }
    pub fn get(self) -> Decimal {
        self.0
    }
}

impl fmt::Display for Qty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Qty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Qty({})", self.0)
    }
}

/// A price: positive, at most 8 decimal places.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Price(Decimal);

impl Price {
    pub fn parse(text: &str) -> Result<Self, DecimalError> {
        parse_positive_decimal(text).map(Price)
    }
    pub fn get(self) -> Decimal {
        self.0
    }
}

impl fmt::Debug for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Price({})", self.0)
    }
}

/// What a signal asks for. `close` flattens the whole position; `cancel` cancels the open HUMBEX
/// orders on the symbol (resting limits and untriggered entries, not TP/SL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Buy,
    Sell,
    Close,
    Cancel,
}

impl Action {
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "buy" => Some(Action::Buy),
            "sell" => Some(Action::Sell),
            "close" => Some(Action::Close),
            "cancel" => Some(Action::Cancel),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Buy => "buy",
            Action::Sell => "sell",
            Action::Close => "close",
            Action::Cancel => "cancel",
        }
    }
}

/// Which symbols signals may name (`SYMBOLS`): a list, or `*` for any linear USDT perpetual
/// (spelled like one; whether the exchange lists it is the executor's check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SymbolPolicy {
    Listed(Vec<Symbol>),
    AnyUsdt,
}

impl SymbolPolicy {
    /// Whether a signal may name `symbol`; the error is the sentence a sender reads.
    pub fn check(&self, symbol: &Symbol) -> Result<(), String> {
        match self {
            SymbolPolicy::Listed(list) if list.contains(symbol) => Ok(()),
            SymbolPolicy::Listed(list) => {
                let mut allowed: Vec<_> = list.iter().map(Symbol::as_str).collect();
                allowed.sort_unstable();
                Err(format!(
                    "{symbol} is not traded here (allowed: {})",
                    allowed.join(", ")
                ))
            }
            SymbolPolicy::AnyUsdt if symbol.is_linear_usdt() => Ok(()),
            SymbolPolicy::AnyUsdt => Err(format!(
                "{symbol} is not a linear USDT perpetual (its name must end in USDT)"
            )),
        }
    }

    /// The symbols named in the list; none for `*`.
    pub fn listed(&self) -> &[Symbol] {
        match self {
            SymbolPolicy::Listed(list) => list,
            SymbolPolicy::AnyUsdt => &[],
        }
    }
}

/// How a signal reached us, which decides how it was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalSource {
    /// POST /webhook with X-Signature or Standard Webhooks headers.
    Signed,
    /// POST /webhook/tradingview, authenticated by the body token alone.
    Tradingview,
}

impl SignalSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalSource::Signed => "signed",
            SignalSource::Tradingview => "tradingview",
        }
    }
}

/// A signal's life: received → processing → done | rejected.
pub mod signal_status {
    pub const RECEIVED: &str = "received";
    pub const PROCESSING: &str = "processing";
    pub const DONE: &str = "done";
    pub const REJECTED: &str = "rejected";
    pub const ALL: &[&str] = &[RECEIVED, PROCESSING, DONE, REJECTED];
}

/// An order's life, as docs/design.md#signal-and-order-statuses fixes it.
pub mod order_status {
    pub const PENDING: &str = "pending";
    pub const SUBMITTED: &str = "submitted";
    pub const NEW: &str = "new";
    pub const PARTIALLY_FILLED: &str = "partially_filled";
    pub const FILLED: &str = "filled";
    pub const CANCELLED: &str = "cancelled";
    pub const REJECTED: &str = "rejected";
    pub const SKIPPED: &str = "skipped";
    pub const FAILED: &str = "failed";
    pub const ALL: &[&str] = &[
        PENDING,
        SUBMITTED,
        NEW,
        PARTIALLY_FILLED,
        FILLED,
        CANCELLED,
        REJECTED,
        SKIPPED,
        FAILED,
    ];

    /// The statuses in which the exchange may still change a row, in the order a row moves
    /// through them. The partial index `orders_open` (sql/V2) is on exactly these.
    pub const OPEN: &[&str] = &[PENDING, SUBMITTED, NEW, PARTIALLY_FILLED];

    /// The rank every other (terminal) status shares.
    pub const TERMINAL_RANK: i32 = OPEN.len() as i32;

    /// A row's rank: a row only ever moves to an equal or higher one, so a late or replayed
    /// update cannot undo a later state. Open statuses rank by their place in [`OPEN`].
    pub fn rank(status: &str) -> i32 {
        OPEN.iter()
            .position(|open| *open == status)
            .map_or(TERMINAL_RANK, |place| place as i32)
    }
}

/// Why a user may not trade now: the codes of the SQL function `humbex_trading_refusal`
/// (sql/V4__subscription_rule.sql), the one home of the "active subscription" rule. Each service
/// words it for its own reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradingRefusal {
    UserDeactivated,
    NoSubscription,
    SubscriptionInactive,
    SubscriptionExpired,
}

impl TradingRefusal {
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "user_deactivated" => Some(Self::UserDeactivated),
            "no_subscription" => Some(Self::NoSubscription),
            "subscription_inactive" => Some(Self::SubscriptionInactive),
            "subscription_expired" => Some(Self::SubscriptionExpired),
            _ => None,
        }
    }
}

impl<'a> tokio_postgres::types::FromSql<'a> for TradingRefusal {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let code = <&str as tokio_postgres::types::FromSql>::from_sql(ty, raw)?;
        Self::from_code(code).ok_or_else(|| format!("unknown trading refusal code {code:?}").into())
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <&str as tokio_postgres::types::FromSql>::accepts(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_normalise_tradingview_spellings() {
        for input in [
            "AVAXUSDT",
            "AVAXUSDT.P",
            "BYBIT:AVAXUSDT.P",
            "bybit:avaxusdt.p",
            "avaxusdt",
        ] {
            assert_eq!(Symbol::parse(input).unwrap().as_str(), "AVAXUSDT", "{input}");
        }
    }

    #[test]
    fn symbols_refuse_lookalikes_and_junk() {
        for input in [
            "",
            "A",
            "BTC\u{0}USDT",
            "\u{202E}AVAXUSDT",
            "BTCUSD\u{422}",
            "AVAX USDT",
            "AVAX-USDT",
            "AAAAAAAAAAAAAAAAAAAAA",
            "BYBIT:",
            ".P",
        ] {
            assert!(Symbol::parse(input).is_err(), "{input:?} was accepted");
        }
        assert_eq!(
            Symbol::parse("BINANCE:AVAXUSDT"),
            Err(SymbolError::ForeignExchange("BINANCE".into()))
        );
    }

    #[test]
    fn decimals_are_strict() {
        assert_eq!(parse_positive_decimal("1.5").unwrap().to_string(), "1.5");
        assert_eq!(
            parse_positive_decimal("0.00000001").unwrap().to_string(),
            "0.00000001"
        );
        assert_eq!(parse_positive_decimal("10.000").unwrap().to_string(), "10");
        assert_eq!(parse_positive_decimal("0"), Err(DecimalError::NotPositive));
        assert_eq!(parse_positive_decimal("0.000"), Err(DecimalError::NotPositive));
        for bad in [
            "-1", "+1", "1e3", ".5", "5.", "", " 1", "1 ", "NaN", "Infinity", "0x10", "1_0",
        ] {
            assert_eq!(parse_positive_decimal(bad), Err(DecimalError::Syntax), "{bad:?}");
        }
        assert_eq!(
            parse_positive_decimal("0.123456789"),
            Err(DecimalError::TooPrecise)
        );
        assert_eq!(
            parse_positive_decimal("123456789012345678901234567890"),
            Err(DecimalError::TooLarge)
        );
        assert_eq!(
            parse_positive_decimal("79228162514264337593543950336"),
            Err(DecimalError::TooLarge)
        );
    }

    #[test]
    fn actions_parse_case_insensitively() {
        assert_eq!(Action::parse("BUY"), Some(Action::Buy));
        assert_eq!(Action::parse("close"), Some(Action::Close));
        assert_eq!(Action::parse("long"), None);
        assert_eq!(Action::parse("Cancel"), Some(Action::Cancel));
        assert_eq!(Action::Cancel.as_str(), "cancel");
    }

    #[test]
    fn symbol_policies() {
        let avax = Symbol::parse("AVAXUSDT").unwrap();
        let btc = Symbol::parse("BTCUSDT").unwrap();
        let listed = SymbolPolicy::Listed(vec![avax.clone()]);
        assert!(listed.check(&avax).is_ok());
        assert_eq!(
            listed.check(&btc).unwrap_err(),
            "BTCUSDT is not traded here (allowed: AVAXUSDT)"
        );
        assert!(SymbolPolicy::AnyUsdt.check(&btc).is_ok());
        for other in ["BTCUSD", "USDT", "BTCUSDC", "BTCPERP"] {
            let symbol = Symbol::parse(other).unwrap();
            assert!(SymbolPolicy::AnyUsdt.check(&symbol).is_err(), "{other}");
        }
        assert!(SymbolPolicy::AnyUsdt.listed().is_empty());
    }
}
