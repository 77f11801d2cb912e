//! The in-memory exchange: instruments, accounts, orders, matching, positions and balances.
//!
//! Everything here is synchronous and runs under one mutex held by [`crate::PaperExchange`]; the
//! functions return the WebSocket pushes they caused so the caller can publish them after unlocking.
//!
//! What each part owns:
//! - [`types`]: side, order type, time in force, order status, create type, margin mode.
//! - [`instrument`]: a listed symbol's filters and current price.
//! - [`order`]: the order and execution records.
//! - [`account`]: one account's books, leverage and order-create rate window.
//! - [`position`]: position slots and how a fill moves one.
//! - [`margin`]: equity, margin and the balance available for new orders.
//! - [`intake`]: order create (every Bybit check, in Bybit's order), cancel and cancel-all.
//! - [`conditions`]: the checks of a trigger and of attached TP/SL.
//! - [`matching`]: what a new order does on arrival, and how a fill moves order, position and wallet.
//! - [`triggers`]: what a price move sets off: conditional orders, crossed limits, TP/SL/trailing
//!   stops, liquidation, and the position pushes of every open position.
//! - [`settings`]: leverage, trading-stop, margin mode and position mode.
//! - [`query`]: the order and position lists.
//! - [`push`] and [`wire`]: private-stream messages and Bybit's JSON shapes.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use crate::bybit_error::BybitError;
use crate::config::{AccountSpec, SymbolConfig};

pub mod account;
pub mod conditions;
pub mod instrument;
pub mod intake;
pub mod margin;
pub mod matching;
pub mod order;
pub mod position;
pub mod push;
pub mod query;
pub mod settings;
pub mod triggers;
pub mod types;
pub mod wire;

pub use account::{Account, RateLimitStatus};
pub use instrument::{Instrument, round_to_step};
pub use intake::OrderRequest;
pub use margin::MarginSummary;
pub use matching::{MAKER_FEE_RATE, TAKER_FEE_RATE};
pub use order::{Execution, Order};
pub use position::Position;
pub use push::{Push, Topic};
pub use query::OrderQuery;
pub use settings::TradingStopRequest;
pub use triggers::PushesByAccount;
pub use types::{CreateType, MarginMode, OrderStatus, OrderType, Side, TimeInForce};
pub use wire::{fmt_dp, money};

pub struct ExchangeState {
    pub instruments: BTreeMap<String, Instrument>,
    pub accounts: HashMap<String, Account>,
    /// False while serving an account nobody listens to: building pushes is most of an order's cost.
    pub emit_pushes: bool,
    next_user_id: u64,
    next_seq: u64,
}

pub type EngineResult<T> = Result<T, BybitError>;

#[derive(Debug, thiserror::Error)]
#[error("an account with this api_key already exists")]
pub struct AccountExists;

impl ExchangeState {
    pub fn new(symbols: &[SymbolConfig]) -> ExchangeState {
        let instruments = symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (s.symbol.clone(), Instrument::new(i as u32 + 1, s)))
            .collect();
        ExchangeState {
            instruments,
            accounts: HashMap::new(),
            emit_pushes: true,
            next_user_id: 100_001,
            next_seq: 1,
        }
    }

    pub fn add_account(&mut self, spec: AccountSpec, now: DateTime<Utc>) -> Result<&Account, AccountExists> {
        if self.accounts.contains_key(&spec.api_key) {
            return Err(AccountExists);
        }
        let user_id = self.next_user_id;
        self.next_user_id += 1;
        let key = spec.api_key.clone();
        self.accounts
            .insert(key.clone(), Account::new(spec, user_id, now));
        Ok(&self.accounts[&key])
    }

    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_constants_are_bybit_defaults() {
        assert_eq!(TAKER_FEE_RATE.to_string(), "0.00055");
        assert_eq!(MAKER_FEE_RATE.to_string(), "0.0002");
        assert_eq!(account::DEFAULT_LEVERAGE.to_string(), "10");
        assert_eq!(intake::PROTECTIVE_PRICE_RATIO.to_string(), "0.05");
        assert_eq!(position::MAINTENANCE_MARGIN_RATE.to_string(), "0.005");
    }
}
