//! The vocabulary of orders: side, order type, time in force, order status, create type and margin
//! mode, with Bybit's names.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "Buy",
            Side::Sell => "Sell",
        }
    }
    pub(super) fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderType {
    Market,
    Limit,
}

impl OrderType {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderType::Market => "Market",
            OrderType::Limit => "Limit",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeInForce {
    #[serde(rename = "GTC")]
    Gtc,
    #[serde(rename = "IOC")]
    Ioc,
    #[serde(rename = "FOK")]
    Fok,
    PostOnly,
}

impl TimeInForce {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeInForce::Gtc => "GTC",
            TimeInForce::Ioc => "IOC",
            TimeInForce::Fok => "FOK",
            TimeInForce::PostOnly => "PostOnly",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    New,
    PartiallyFilled,
    /// A conditional order waiting for its trigger price.
    Untriggered,
    /// Passed through (and pushed) when a conditional order fires, before it becomes `New`.
    Triggered,
    Filled,
    Cancelled,
    Rejected,
    /// A conditional order cancelled before it fired.
    Deactivated,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::New => "New",
            OrderStatus::PartiallyFilled => "PartiallyFilled",
            OrderStatus::Filled => "Filled",
            OrderStatus::Cancelled => "Cancelled",
            OrderStatus::Rejected => "Rejected",
            OrderStatus::Untriggered => "Untriggered",
            OrderStatus::Triggered => "Triggered",
            OrderStatus::Deactivated => "Deactivated",
        }
    }
    /// Open orders are what `/v5/order/realtime` lists by default and what cancel can reach.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            OrderStatus::New | OrderStatus::PartiallyFilled | OrderStatus::Untriggered
        )
    }
    /// Open and on the book: can fill now (an untriggered order cannot).
    pub fn is_working(self) -> bool {
        matches!(self, OrderStatus::New | OrderStatus::PartiallyFilled)
    }
}

/// Who created an order (Bybit's `createType`): the user, or the exchange on the user's behalf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreateType {
    CreateByUser,
    CreateByTakeProfit,
    CreateByStopLoss,
    CreateByTrailingStop,
    CreateByLiq,
}

impl CreateType {
    pub fn as_str(self) -> &'static str {
        match self {
            CreateType::CreateByUser => "CreateByUser",
            CreateType::CreateByTakeProfit => "CreateByTakeProfit",
            CreateType::CreateByStopLoss => "CreateByStopLoss",
            CreateType::CreateByTrailingStop => "CreateByTrailingStop",
            CreateType::CreateByLiq => "CreateByLiq",
        }
    }
    /// Bybit's `stopOrderType` of the order this create type produces.
    pub fn stop_order_type(self) -> &'static str {
        match self {
            CreateType::CreateByUser | CreateType::CreateByLiq => "",
            CreateType::CreateByTakeProfit => "TakeProfit",
            CreateType::CreateByStopLoss => "StopLoss",
            CreateType::CreateByTrailingStop => "TrailingStop",
        }
    }
}

/// Account-wide margin mode of a unified account (`/v5/account/set-margin-mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum MarginMode {
    #[default]
    #[serde(rename = "REGULAR_MARGIN")]
    Regular,
    #[serde(rename = "ISOLATED_MARGIN")]
    Isolated,
    #[serde(rename = "PORTFOLIO_MARGIN")]
    Portfolio,
}

impl MarginMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MarginMode::Regular => "REGULAR_MARGIN",
            MarginMode::Isolated => "ISOLATED_MARGIN",
            MarginMode::Portfolio => "PORTFOLIO_MARGIN",
        }
    }
    pub fn parse(text: &str) -> Option<MarginMode> {
        Some(match text {
            "REGULAR_MARGIN" => MarginMode::Regular,
            "ISOLATED_MARGIN" => MarginMode::Isolated,
            "PORTFOLIO_MARGIN" => MarginMode::Portfolio,
            _ => return None,
        })
    }
}
