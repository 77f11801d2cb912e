//! Matching: what a new order does against the last price (fill as taker, rest, or cancel), how a
//! fill moves the order, the position and the wallet, and the pushes every order change sends.
//! What a price move sets off (crossed limits, triggers, stops, liquidation) is in `triggers.rs`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{ExchangeState, Execution, OrderStatus, OrderType, Push, Side, TimeInForce, Topic};

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
            self.fill(api_key, index, last, false, None, now, &mut pushes);
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
        let order = &self.accounts[api_key].orders[index];
        let instrument = &self.instruments[&order.symbol];
        pushes.push(Push::new(Topic::Order, vec![order.to_bybit_json(instrument)]));
        self.push_position_wallet(api_key, &order.symbol, order.position_idx, now, pushes);
    }

    /// Fills what is left of an order, or at most `max_qty` of it, at `price` (capped for reduce-only
    /// orders at the position), moving the position, the wallet and the order.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fill(
        &mut self,
        api_key: &str,
        index: usize,
        price: Decimal,
        is_maker: bool,
        max_qty: Option<Decimal>,
        now: DateTime<Utc>,
        pushes: &mut Vec<Push>,
    ) {
        let seq = self.next_seq();
        let instrument = self.instruments[&self.accounts[api_key].orders[index].symbol].clone();
        let account = self.accounts.get_mut(api_key).expect("account exists");
        let order = account.orders[index].clone();
        let leaves = order.qty - order.cum_exec_qty;
        let requested = max_qty.map_or(leaves, |m| m.min(leaves));
        let leverage = account.leverage(&order.symbol);
        let position = account.position_mut(&order.symbol, order.position_idx, now);
        let closes = position.order_closes(order.side);
        let mut exec_qty = requested;
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
        let effect = position.apply_fill(order.side, exec_qty, price, fee);
        // closedPnl: the closed part's gross PnL less its closing fee and the fees paid opening it.
        let closed_pnl = if effect.closed_size.is_zero() {
            Decimal::ZERO
        } else {
            effect.pnl - (fee * effect.closed_size / exec_qty).round_dp(8) - effect.open_fees
        };
        position.cur_realised_pnl += effect.pnl - fee;
        position.cum_realised_pnl += effect.pnl - fee;
        position.mark_price = instrument.price;
        position.leverage = leverage;
        position.seq = seq;
        position.updated_at = now;
        // Order-attached TP/SL (tpslMode Full) become the position's once the order opened it.
        if position.side == Some(order.side) && !position.size.is_zero() {
            if order.take_profit.is_some() {
                position.take_profit = order.take_profit;
            }
            if order.stop_loss.is_some() {
                position.stop_loss = order.stop_loss;
            }
        }
        account.wallet_balance += effect.pnl - fee;
        account.cum_realised_pnl += effect.pnl - fee;

        let order = &mut account.orders[index];
        order.cum_exec_value += exec_value;
        order.cum_exec_qty += exec_qty;
        order.cum_exec_fee += fee;
        order.closed_pnl += closed_pnl;
        order.avg_price =
            Some((order.cum_exec_value / order.cum_exec_qty).round_dp(instrument.price_dp() + 4));
        order.updated_at = now;
        let truncated = exec_qty < requested;
        // Reduce-only truncation shrinks the order to what was actually filled, as Bybit does.
        if truncated && order.reduce_only {
            order.qty = order.cum_exec_qty;
        }
        order.status = if order.cum_exec_qty >= order.qty {
            OrderStatus::Filled
        } else if truncated {
            OrderStatus::Cancelled
        } else {
            OrderStatus::PartiallyFilled
        };
        let execution = Execution {
            exec_id: uuid::Uuid::new_v4().to_string(),
            order_id: order.order_id.clone(),
            order_link_id: order.order_link_id.clone(),
            symbol: order.symbol.clone(),
            side: order.side,
            order_type: order.order_type,
            create_type: order.create_type,
            order_price: order.price,
            order_qty: order.qty,
            leaves_qty: order.leaves_qty(),
            exec_price: price,
            exec_qty,
            exec_value,
            exec_fee: fee,
            fee_rate,
            is_maker,
            closed_size: effect.closed_size,
            exec_pnl: effect.pnl,
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
}

/// Whether a limit order at `limit` trades at `last`: a buy at or below its price, a sell at or above.
pub(super) fn limit_crossed(side: Side, limit: Decimal, last: Decimal) -> bool {
    match side {
        Side::Buy => last <= limit,
        Side::Sell => last >= limit,
    }
}
