//! The account: positions, wallet balance, the API key's permissions, margin and position mode.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{PositionIdx, Side};
use crate::lenient;

/// One position slot (`GET /v5/position/list`). A flat slot has `side == None` and size 0.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    pub symbol: String,
    #[serde(default)]
    pub position_idx: PositionIdx,
    #[serde(default, deserialize_with = "lenient::opt_side")]
    pub side: Option<Side>,
    #[serde(deserialize_with = "lenient::decimal")]
    pub size: Decimal,
    /// Entry price (REST calls it `avgPrice`, the WS topic `entryPrice`).
    #[serde(default, alias = "entryPrice", deserialize_with = "lenient::opt_decimal")]
    pub avg_price: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub mark_price: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub leverage: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub unrealised_pnl: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub cum_realised_pnl: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub cur_realised_pnl: Option<Decimal>,
    /// The position's protection (tpslMode Full); `None` when unset (Bybit writes "0").
    #[serde(default, deserialize_with = "lenient::opt_price")]
    pub take_profit: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_price")]
    pub stop_loss: Option<Decimal>,
    /// Trailing stop distance; `None` when unset.
    #[serde(default, deserialize_with = "lenient::opt_price")]
    pub trailing_stop: Option<Decimal>,
    /// `None` when Bybit reports none ("" for a flat position or one that cannot be liquidated).
    #[serde(default, deserialize_with = "lenient::opt_price")]
    pub liq_price: Option<Decimal>,
    #[serde(default)]
    pub tpsl_mode: String,
    /// `Normal`, `Liq` or `Adl`.
    #[serde(default)]
    pub position_status: String,
    #[serde(default)]
    pub seq: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub updated_time: Option<i64>,
}

impl Position {
    pub fn is_flat(&self) -> bool {
        self.side.is_none() || self.size.is_zero()
    }
}

/// One account of `GET /v5/account/wallet-balance` (UNIFIED).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletAccount {
    pub account_type: String,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub total_equity: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub total_wallet_balance: Option<Decimal>,
    /// The account-level figure for new orders under cross margin.
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub total_available_balance: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub total_margin_balance: Option<Decimal>,
    /// Unrealised PnL of all perpetual positions.
    #[serde(default, rename = "totalPerpUPL", deserialize_with = "lenient::opt_decimal")]
    pub total_perp_upl: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub total_initial_margin: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub total_maintenance_margin: Option<Decimal>,
    #[serde(default)]
    pub coin: Vec<CoinBalance>,
}

impl WalletAccount {
    /// The USDT figures sizing needs, or `None` when the answer has no USDT coin row (ask with
    /// `coin=USDT`: without it Bybit lists only non-zero coins).
    pub fn usdt(&self) -> Option<UsdtBalance> {
        let coin = self.coin.iter().find(|c| c.coin == "USDT")?;
        Some(UsdtBalance {
            equity: coin.equity?,
            wallet_balance: coin.wallet_balance.unwrap_or_default(),
            unrealised_pnl: coin.unrealised_pnl.unwrap_or_default(),
            // Under a unified account the balance free for new orders is account-wide (in USD,
            // which Bybit values USDT at); the coin row's own field is deprecated.
            available_balance: self.total_available_balance.unwrap_or_default(),
        })
    }
}

/// A unified account's USDT money, all decimals: what `quantity_type` sizing reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsdtBalance {
    /// Wallet balance plus unrealised PnL.
    pub equity: Decimal,
    pub wallet_balance: Decimal,
    pub unrealised_pnl: Decimal,
    /// What is free for new orders (`totalAvailableBalance`).
    pub available_balance: Decimal,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoinBalance {
    pub coin: String,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub equity: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub wallet_balance: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub unrealised_pnl: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub cum_realised_pnl: Option<Decimal>,
    #[serde(
        default,
        rename = "totalPositionIM",
        deserialize_with = "lenient::opt_decimal"
    )]
    pub total_position_im: Option<Decimal>,
    #[serde(default, rename = "totalOrderIM", deserialize_with = "lenient::opt_decimal")]
    pub total_order_im: Option<Decimal>,
}

/// A unified account's margin mode (`POST /v5/account/set-margin-mode`): account-wide, not per
/// symbol. Cross is `RegularMargin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MarginMode {
    #[serde(rename = "REGULAR_MARGIN")]
    RegularMargin,
    #[serde(rename = "ISOLATED_MARGIN")]
    IsolatedMargin,
    #[serde(rename = "PORTFOLIO_MARGIN")]
    PortfolioMargin,
}

impl MarginMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MarginMode::RegularMargin => "REGULAR_MARGIN",
            MarginMode::IsolatedMargin => "ISOLATED_MARGIN",
            MarginMode::PortfolioMargin => "PORTFOLIO_MARGIN",
        }
    }
}

/// `POST /v5/position/switch-mode`: `0` one-way (merged single), `3` hedge (both sides).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PositionMode {
    OneWay,
    Hedge,
}

impl PositionMode {
    pub fn wire(self) -> u8 {
        match self {
            PositionMode::OneWay => 0,
            PositionMode::Hedge => 3,
        }
    }
}

/// What a setting call did. Bybit answers "not modified" (110043 leverage, 110025 position
/// mode, 34040 trading-stop) when the value was already set; that is success, not a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingOutcome {
    Changed,
    AlreadySet,
}

/// `GET /v5/account/info` (the fields HUMBEX reads).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountInfo {
    pub margin_mode: MarginMode,
    #[serde(default)]
    pub unified_margin_status: Option<i64>,
}

/// `GET /v5/user/query-api`: what the signing key may do. See [`crate::key_check`].
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyInfo {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub api_key: String,
    /// Wire value `1` (read-only) or `0` (read-write).
    #[serde(deserialize_with = "lenient::flag")]
    pub read_only: bool,
    /// Permission group → permissions. Kept as an open map so groups Bybit adds later are still
    /// seen (and refused) by the allow-list.
    #[serde(default)]
    pub permissions: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default, rename = "type")]
    pub key_type: Option<i64>,
    #[serde(default)]
    pub deadline_day: Option<i64>,
    #[serde(default)]
    pub expired_at: Option<String>,
    #[serde(default)]
    pub is_master: Option<bool>,
    #[serde(default)]
    pub uta: Option<i64>,
    #[serde(default, rename = "userID")]
    pub user_id: Option<i64>,
}
