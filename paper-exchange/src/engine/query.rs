//! The read side of `/v5/order/realtime`, `/v5/order/history` and `/v5/position/list`.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Account, ExchangeState, Order};

/// How many finished orders `/v5/order/realtime?openOnly=1` may return, as on Bybit.
const MAX_RECENT_CLOSED: usize = 500;

/// Filters of /v5/order/realtime and /v5/order/history.
#[derive(Clone, Debug, Default)]
pub struct OrderQuery {
    pub symbol: Option<String>,
    pub order_id: Option<String>,
    pub order_link_id: Option<String>,
    pub order_status: Option<String>,
    pub open_only: bool,
    pub closed_only: bool,
}

impl ExchangeState {
    /// Orders matching a Bybit order query, newest first.
    pub fn query_orders<'a>(
        &'a self,
        account: &'a Account,
        filter: &OrderQuery,
    ) -> impl Iterator<Item = &'a Order> + 'a {
        let by_id = filter.order_id.clone().filter(|s| !s.is_empty());
        let by_link = filter.order_link_id.clone().filter(|s| !s.is_empty());
        let open_only = filter.open_only;
        let closed_only = filter.closed_only;
        let symbol = filter.symbol.clone();
        let status = filter.order_status.clone();
        let mut closed_seen = 0usize;
        account.orders.iter().rev().filter(move |o| {
            if let Some(id) = &by_id {
                return &o.order_id == id;
            }
            if let Some(link) = &by_link {
                return &o.order_link_id == link;
            }
            if symbol.as_ref().is_some_and(|s| s != &o.symbol) {
                return false;
            }
            if status
                .as_ref()
                .is_some_and(|s| !s.split(',').any(|x| x == o.status.as_str()))
            {
                return false;
            }
            if open_only && !o.status.is_open() {
                return false;
            }
            if closed_only && o.status.is_open() {
                closed_seen += 1;
                return closed_seen <= MAX_RECENT_CLOSED;
            }
            true
        })
    }

    pub fn positions_json(&self, account: &Account, symbol: Option<&str>, now: DateTime<Utc>) -> Vec<Value> {
        let mut list = Vec::new();
        for instrument in self.instruments.values() {
            if symbol.is_some_and(|s| s != instrument.symbol) {
                continue;
            }
            for &idx in account.position_indexes() {
                let p = account.position_snapshot(&instrument.symbol, idx, now);
                // Without a symbol filter Bybit lists only open positions.
                if symbol.is_none() && p.size.is_zero() {
                    continue;
                }
                list.push(self.position_json(account, &p, false));
            }
        }
        list
    }
}
