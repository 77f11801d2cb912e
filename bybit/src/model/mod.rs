//! Typed Bybit V5 requests and responses (linear USDT perpetuals): market data, orders, fills,
//! positions, wallet, API-key info, rate-limit headers and private-stream pushes. Wire field names
//! are mapped here; every amount is a `Decimal` parsed from Bybit's strings, never an `f64`.

use std::fmt;

use serde::{Deserialize, Serialize};

mod account;
mod market;
mod trading;

pub use account::*;
pub use market::*;
pub use trading::*;

/// `Buy` (long) or `Sell` (short), capitalised as Bybit spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "Buy",
            Side::Sell => "Sell",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderType {
    Market,
    Limit,
    /// Bybit reports `UNKNOWN` for non-order events such as funding.
    #[serde(other)]
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TimeInForce {
    #[serde(rename = "GTC")]
    GoodTillCancel,
    #[serde(rename = "IOC")]
    ImmediateOrCancel,
    #[serde(rename = "FOK")]
    FillOrKill,
    PostOnly,
}

/// Order life-cycle states (docs/bybit.md#order-statuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderStatus {
    New,
    PartiallyFilled,
    Untriggered,
    Triggered,
    Filled,
    Cancelled,
    Rejected,
    PartiallyFilledCanceled,
    Deactivated,
    /// A state this client does not know yet; treated as non-terminal so it is re-checked.
    #[serde(other)]
    Unknown,
}

impl OrderStatus {
    /// No further change will happen to the order. A derivatives `Cancelled` may still carry fills.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Filled
                | OrderStatus::Cancelled
                | OrderStatus::Rejected
                | OrderStatus::PartiallyFilledCanceled
                | OrderStatus::Deactivated
        )
    }
}

/// `0` one-way mode, `1` hedge-mode long slot, `2` hedge-mode short slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum PositionIdx {
    #[default]
    OneWay,
    HedgeBuy,
    HedgeSell,
}

impl From<PositionIdx> for u8 {
    fn from(idx: PositionIdx) -> u8 {
        match idx {
            PositionIdx::OneWay => 0,
            PositionIdx::HedgeBuy => 1,
            PositionIdx::HedgeSell => 2,
        }
    }
}

impl TryFrom<u8> for PositionIdx {
    type Error = String;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            0 => Ok(PositionIdx::OneWay),
            1 => Ok(PositionIdx::HedgeBuy),
            2 => Ok(PositionIdx::HedgeSell),
            other => Err(format!("positionIdx {other} is not 0, 1 or 2")),
        }
    }
}

/// A client order id that Bybit will accept: 1 to 36 characters of `[A-Za-z0-9_-]`.
///
/// Checked locally so a malformed id is refused before anything is sent, instead of coming back as
/// a 10001 that would look like a venue rejection.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct OrderLinkId(String);

impl OrderLinkId {
    pub const MAX_LEN: usize = 36;

    pub fn parse(id: impl Into<String>) -> Result<OrderLinkId, String> {
        let id = id.into();
        if id.is_empty() || id.len() > Self::MAX_LEN {
            return Err(format!(
                "orderLinkId must be 1 to {} characters, got {}",
                Self::MAX_LEN,
                id.len()
            ));
        }
        if let Some(bad) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("orderLinkId may not contain {bad:?}"));
        }
        Ok(OrderLinkId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderLinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The three `X-Bapi-Limit*` response headers; any may be missing (public endpoints omit them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimitStatus {
    /// `X-Bapi-Limit`: requests allowed per window for this endpoint.
    pub limit: Option<u32>,
    /// `X-Bapi-Limit-Status`: requests left in the current window.
    pub remaining: Option<u32>,
    /// `X-Bapi-Limit-Reset-Timestamp`: ms since the epoch when the window resets.
    pub reset_at_ms: Option<i64>,
}

/// A successful REST answer: the parsed `result`, the rate-limit headers and the envelope `time`.
#[derive(Clone, Debug)]
pub struct BybitResponse<T> {
    pub value: T,
    pub rate_limit: RateLimitStatus,
    /// Envelope `time`: the server clock in ms, useful to measure clock skew.
    pub server_time_ms: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_link_id_rule() {
        assert!(OrderLinkId::parse("bot-0001_x").is_ok());
        assert!(OrderLinkId::parse("a".repeat(36)).is_ok());
        assert!(OrderLinkId::parse("a".repeat(37)).is_err());
        assert!(OrderLinkId::parse("").is_err());
        assert!(OrderLinkId::parse("has space").is_err());
        assert!(OrderLinkId::parse("ünï").is_err());
    }

    #[test]
    fn unknown_enum_values_do_not_fail_parsing() {
        let status: OrderStatus = serde_json::from_str("\"SomethingNew\"").unwrap();
        assert_eq!(status, OrderStatus::Unknown);
        assert!(!status.is_terminal());
        let order_type: OrderType = serde_json::from_str("\"UNKNOWN\"").unwrap();
        assert_eq!(order_type, OrderType::Unknown);
    }

    #[test]
    fn position_idx_round_trips_as_a_number() {
        assert_eq!(serde_json::to_string(&PositionIdx::HedgeSell).unwrap(), "2");
        let idx: PositionIdx = serde_json::from_str("1").unwrap();
        assert_eq!(idx, PositionIdx::HedgeBuy);
        assert!(serde_json::from_str::<PositionIdx>("3").is_err());
    }
}
