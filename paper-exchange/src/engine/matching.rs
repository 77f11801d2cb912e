//! Matching: what a new order does against the last price (fill as taker, rest, or cancel), fills of
//! resting orders when a price move crosses them, and the pushes every order change sends.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{
    ExchangeState, Execution, OrderStatus, OrderType, Push, Side, TimeInForce, Topic, round_to_step,
};

/// Bybit's default taker fee for USDT perpetuals (0.055 %).
pub const TAKER_FEE_RATE: Decimal = Decimal::from_parts(55, 0, 0, false, 5);
/// Bybit's default maker fee for USDT perpetuals (0.02 %).
pub const MAKER_FEE_RATE: Decimal = Decimal::from_parts(2, 0, 0, false, 4);

impl ExchangeState {
    /// A just-booked order against the last price: a crossing order fills at once as taker (unless
    /// post-only), an IOC or FOK that does not cross is cancelled, anything else rests.
    pub(super) fn match_on_arrival(&mut self, api_key: &str, index: usize, now: DateTime<Utc>) -> Vec<Push> {
        let order = &self.accounts[api_key].orders[index];
        let (order_type, side, price, time_in_force) =
            (order.order_type, order.side, order.price, order.time_in_force);
        let last = self.instruments[&order.symbol].price;
        let crosses = match (order_type, side) {
            (OrderType::Market, _) => true,
            (OrderType::Limit, _) => limit_crossed(side, price, last),
        };
        let mut pushes = Vec::new();
        if crosses && time_in_force == TimeInForce::PostOnly {
            self.finish_unfilled(api_key, index, "EC_PostOnlyWillTakeLiquidity", now, &mut pushes);
        } else if crosses {
            // Taker fills happen at the last price: the book is assumed deep enough at the touch.
            self.fill(api_key, index, last, false, now, &mut pushes);
        } else if matches!(time_in_force, TimeInForce::Ioc | TimeInForce::Fok) {
            let reason = if time_in_force == TimeInForce::Fok {
                "EC_CancelForNoFullFill"
            } else {
                "EC_NoImmediateQtyToFill"
            };
            self.finish_unfilled(api_key, index, reason, now, &mut pushes);
        } else {
            self.push_order_position_wallet(api_key, index, now, &mut pushes);
        }
        pushes
    }

    fn finish_unfilled(
        &mut self,
        api_key: &str,
        index: usize,
        reason: &'static str,
        now: DateTime<Utc>,
        pushes: &mut Vec<Push>,
    ) {
        let account = self.accounts.get_mut(api_key).expect("account exists");
        let order = &mut account.orders[index];
        order.status = OrderStatus::Cancelled;
        order.cancel_type = "UNKNOWN";
        order.reject_reason = reason;
        order.updated_at = now;
        self.push_order_position_wallet(api_key, index, now, pushes);
    }

    pub(super) fn push_order_position_wallet(
        &mut self,
        api_key: &str,
        index: usize,
        now: DateTime<Utc>,
        pushes: &mut Vec<Push>,
    ) {
        let account = self.accounts.get_mut(api_key).expect("account exists");
        // Every status change ends here, which keeps the open-order index exact.
        if account.orders[index].status.is_open() {
            account.open_order_indexes.insert(index);
        } else {
            account.open_order_indexes.remove(&index);
        }
        if !self.emit_pushes {
            return;
        }
        let account = &self.accounts[api_key];
        let order = &account.orders[index];
        let instrument = &self.instruments[&order.symbol];
        pushes.push(Push::new(Topic::Order, vec![order.to_bybit_json(instrument)]));
        let position = account.position_snapshot(&order.symbol, order.position_idx, now);
        pushes.push(Push::new(
            Topic::Position,
            vec![position.to_bybit_json(instrument, true)],
        ));
        pushes.push(Push::new(
            Topic::Wallet,
            vec![self.margin_summary(account).wallet_json()],
        ));
    }

    /// Fills the whole remaining quantity of an order at `price` (capped for reduce-only orders).
    fn fill(
        &mut self,
        api_key: &str,
        index: usize,
        price: Decimal,
        is_maker: bool,
        now: DateTime<Utc>,
        pushes: &mut Vec<Push>,
    ) {
        let seq = self.next_seq();
        let instrument = self.instruments[&self.accounts[api_key].orders[index].symbol].clone();
        let account = self.accounts.get_mut(api_key).expect("account exists");
        let order = account.orders[index].clone();
        let mut exec_qty = order.qty - order.cum_exec_qty;
        let leverage = account.leverage(&order.symbol);
        let position = account.position_mut(&order.symbol, order.position_idx, now);
        let closes = match position.side {
            Some(s) => s != order.side,
            None => false,
        } || (order.position_idx == 1 && order.side == Side::Sell)
            || (order.position_idx == 2 && order.side == Side::Buy);
        if order.reduce_only || order.position_idx != 0 && closes {
            exec_qty = exec_qty.min(position.size);
        }
        if exec_qty.is_zero() {
            let order = &mut account.orders[index];
            order.status = OrderStatus::Cancelled;
            order.cancel_type = "CancelByReduceOnly";
            order.updated_at = now;
            self.push_order_position_wallet(api_key, index, now, pushes);
            return;
        }

        let fee_rate = if is_maker { MAKER_FEE_RATE } else { TAKER_FEE_RATE };
        let exec_value = exec_qty * price;
        let fee = (exec_value * fee_rate).round_dp(8);
        let (closed_size, pnl) = position.apply_fill(order.side, exec_qty, price, closes);
        position.cur_realised_pnl += pnl - fee;
        position.cum_realised_pnl += pnl - fee;
        position.mark_price = instrument.price;
        position.leverage = leverage;
        position.seq = seq;
        position.updated_at = now;
        account.wallet_balance += pnl - fee;
        account.cum_realised_pnl += pnl - fee;

        let order = &mut account.orders[index];
        order.cum_exec_value += exec_value;
        order.cum_exec_qty += exec_qty;
        order.cum_exec_fee += fee;
        order.avg_price =
            Some((order.cum_exec_value / order.cum_exec_qty).round_dp(instrument.price_dp() + 4));
        order.updated_at = now;
        // Reduce-only truncation shrinks the order to what was actually filled, as Bybit does.
        if order.cum_exec_qty < order.qty && order.reduce_only {
            order.qty = order.cum_exec_qty;
        }
        order.status = if order.cum_exec_qty >= order.qty {
            OrderStatus::Filled
        } else {
            OrderStatus::Cancelled
        };
        let execution = Execution {
            exec_id: uuid::Uuid::new_v4().to_string(),
            order_id: order.order_id.clone(),
            order_link_id: order.order_link_id.clone(),
            symbol: order.symbol.clone(),
            side: order.side,
            order_type: order.order_type,
            order_price: order.price,
            order_qty: order.qty,
            leaves_qty: order.leaves_qty(),
            exec_price: price,
            exec_qty,
            exec_value,
            exec_fee: fee,
            fee_rate,
            is_maker,
            closed_size,
            exec_pnl: pnl,
            mark_price: instrument.price,
            seq,
            exec_time: now,
        };
        if self.emit_pushes {
            pushes.push(Push::new(
                Topic::Execution,
                vec![execution.to_bybit_json(&instrument)],
            ));
            pushes.push(Push::new(
                Topic::ExecutionFast,
                vec![execution.to_fast_json(&instrument)],
            ));
        }
        account.executions.push(execution);
        self.push_order_position_wallet(api_key, index, now, pushes);
    }

    /// Sets a symbol's price and fills every resting limit order the move crosses, at its limit price.
    pub fn set_price(
        &mut self,
        symbol: &str,
        price: Decimal,
        now: DateTime<Utc>,
    ) -> Option<Vec<(String, Vec<Push>)>> {
        let instrument = self.instruments.get_mut(symbol)?;
        instrument.price = round_to_step(price, instrument.tick_size).max(instrument.tick_size);
        let price = instrument.price;
        let mut crossed: Vec<(String, usize)> = Vec::new();
        for (key, account) in &self.accounts {
            for &i in &account.open_order_indexes {
                let o = &account.orders[i];
                if o.symbol == symbol && o.status.is_open() && limit_crossed(o.side, o.price, price) {
                    crossed.push((key.clone(), i));
                }
            }
        }
        let mut by_account: Vec<(String, Vec<Push>)> = Vec::new();
        for (key, index) in crossed {
            let limit_price = self.accounts[&key].orders[index].price;
            let mut pushes = Vec::new();
            self.fill(&key, index, limit_price, true, now, &mut pushes);
            match by_account.iter_mut().find(|(k, _)| *k == key) {
                Some((_, all)) => all.extend(pushes),
                None => by_account.push((key, pushes)),
            }
        }
        for account in self.accounts.values_mut() {
            for p in account.positions.values_mut() {
                if p.symbol == symbol {
                    p.mark_price = price;
                }
            }
        }
        Some(by_account)
    }
}

/// Whether a limit order at `limit` trades at `last`: a buy at or below its price, a sell at or above.
fn limit_crossed(side: Side, limit: Decimal, last: Decimal) -> bool {
    match side {
        Side::Buy => last <= limit,
        Side::Sell => last >= limit,
    }
}
