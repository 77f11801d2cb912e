//! One account: its key's spec, balance, order book and history, positions, leverage per symbol and
//! the order-create rate window.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{Execution, MarginMode, Order, Position};
use crate::config::{AccountSpec, PositionMode};

pub(super) const DEFAULT_LEVERAGE: Decimal = Decimal::from_parts(10, 0, 0, false, 0);

pub struct Account {
    pub spec: AccountSpec,
    pub user_id: u64,
    pub created_at: DateTime<Utc>,
    pub wallet_balance: Decimal,
    pub cum_realised_pnl: Decimal,
    pub margin_mode: MarginMode,
    pub orders: Vec<Order>,
    pub(super) order_index_by_id: HashMap<String, usize>,
    pub(super) order_index_by_link_id: HashMap<String, usize>,
    pub executions: Vec<Execution>,
    pub positions: BTreeMap<(String, u8), Position>,
    pub(super) leverage_by_symbol: HashMap<String, Decimal>,
    order_create_times_ms: VecDeque<i64>,
    /// Indexes of New/PartiallyFilled orders, so margin and matching need not scan the whole history.
    pub(super) open_order_indexes: BTreeSet<usize>,
}

/// What an order-create rate check decided, with the numbers for the X-Bapi-Limit* headers.
#[derive(Clone, Copy, Debug)]
pub struct RateLimitStatus {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    pub reset_at_ms: i64,
}

impl Account {
    pub fn new(spec: AccountSpec, user_id: u64, now: DateTime<Utc>) -> Account {
        Account {
            wallet_balance: spec.balance_usdt,
            spec,
            user_id,
            created_at: now,
            cum_realised_pnl: Decimal::ZERO,
            margin_mode: MarginMode::default(),
            orders: Vec::new(),
            order_index_by_id: HashMap::new(),
            order_index_by_link_id: HashMap::new(),
            executions: Vec::new(),
            positions: BTreeMap::new(),
            leverage_by_symbol: HashMap::new(),
            order_create_times_ms: VecDeque::new(),
            open_order_indexes: BTreeSet::new(),
        }
    }

    /// Rolling one-second window per account, as Bybit counts order creates per UID.
    pub fn check_order_create_rate(&mut self, now_ms: i64) -> RateLimitStatus {
        let limit = self.spec.order_create_limit_per_second;
        while let Some(&first) = self.order_create_times_ms.front() {
            if first <= now_ms - 1000 {
                self.order_create_times_ms.pop_front();
            } else {
                break;
            }
        }
        let used = self.order_create_times_ms.len() as u32;
        if used >= limit {
            let reset = self
                .order_create_times_ms
                .front()
                .map(|t| t + 1000)
                .unwrap_or(now_ms);
            return RateLimitStatus {
                allowed: false,
                limit,
                remaining: 0,
                reset_at_ms: reset,
            };
        }
        self.order_create_times_ms.push_back(now_ms);
        RateLimitStatus {
            allowed: true,
            limit,
            remaining: limit - used - 1,
            reset_at_ms: now_ms,
        }
    }

    pub fn order_by_id(&self, order_id: &str) -> Option<&Order> {
        self.order_index_by_id.get(order_id).map(|&i| &self.orders[i])
    }
    pub fn order_by_link_id(&self, order_link_id: &str) -> Option<&Order> {
        self.order_index_by_link_id
            .get(order_link_id)
            .map(|&i| &self.orders[i])
    }

    pub(super) fn leverage(&self, symbol: &str) -> Decimal {
        self.leverage_by_symbol
            .get(symbol)
            .copied()
            .unwrap_or(DEFAULT_LEVERAGE)
    }

    pub(super) fn position_mut(&mut self, symbol: &str, idx: u8, now: DateTime<Utc>) -> &mut Position {
        let leverage = self.leverage(symbol);
        self.positions
            .entry((symbol.to_string(), idx))
            .or_insert_with(|| Position::flat(symbol, idx, leverage, now))
    }

    pub(super) fn position_snapshot(&self, symbol: &str, idx: u8, now: DateTime<Utc>) -> Position {
        self.positions
            .get(&(symbol.to_string(), idx))
            .cloned()
            .unwrap_or_else(|| Position::flat(symbol, idx, self.leverage(symbol), now))
    }

    /// The position slots a symbol has in this account's mode (one in one-way, two in hedge).
    pub fn position_indexes(&self) -> &'static [u8] {
        match self.spec.position_mode {
            PositionMode::OneWay => &[0],
            PositionMode::Hedge => &[1, 2],
        }
    }
}
