//! What a price move sets off, account by account: conditional orders that fire, resting limit
//! orders it crosses (at most `max_fill_qty` each when the control API asks for partial fills),
//! positions it liquidates, take profits, stop losses and trailing stops it hits, and the position
//! and wallet pushes of every account holding the symbol (Bybit pushes `position` on every change).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::intake::protective_price;
use super::matching::limit_crossed;
use super::{
    CreateType, ExchangeState, Order, OrderStatus, OrderType, Push, Side, TimeInForce, Topic, round_to_step,
};

/// Everything a price move caused, per account.
pub type PushesByAccount = Vec<(String, Vec<Push>)>;

impl ExchangeState {
    /// Sets a symbol's price and applies its consequences; `None` if the symbol is not listed.
    /// Pushes are built only for accounts `listening` says have a private stream open: a price
    /// move touches every account, and building unread pushes is most of its cost.
    pub fn set_price(
        &mut self,
        symbol: &str,
        price: Decimal,
        max_fill_qty: Option<Decimal>,
        listening: &dyn Fn(&str) -> bool,
        now: DateTime<Utc>,
    ) -> Option<PushesByAccount> {
        let instrument = self.instruments.get_mut(symbol)?;
        instrument.price = round_to_step(price, instrument.tick_size).max(instrument.tick_size);
        let price = instrument.price;
        let keys: Vec<String> = self.accounts.keys().cloned().collect();
        let mut by_account = Vec::new();
        let emit_pushes = self.emit_pushes;
        for key in keys {
            self.emit_pushes = emit_pushes && listening(&key);
            let mut pushes = Vec::new();
            self.fire_conditionals(&key, symbol, price, now, &mut pushes);
            self.fill_crossed_limits(&key, symbol, price, max_fill_qty, now, &mut pushes);
            self.protect_positions(&key, symbol, price, now, &mut pushes);
            if !pushes.is_empty() {
                by_account.push((key, pushes));
            }
        }
        self.emit_pushes = emit_pushes;
        Some(by_account)
    }

    /// Untriggered orders whose trigger the price reached pass through `Triggered` and then act as
    /// if just placed (a market order fills at once, a limit order rests or crosses).
    fn fire_conditionals(
        &mut self,
        key: &str,
        symbol: &str,
        price: Decimal,
        now: DateTime<Utc>,
        pushes: &mut Vec<Push>,
    ) {
        let account = &self.accounts[key];
        let fired: Vec<usize> = account
            .open_order_indexes
            .iter()
            .copied()
            .filter(|&i| {
                let o = &account.orders[i];
                o.symbol == symbol
                    && o.status == OrderStatus::Untriggered
                    && o.trigger_price.is_some_and(|t| match o.trigger_direction {
                        1 => price >= t,
                        _ => price <= t,
                    })
            })
            .collect();
        let tick = self.instruments[symbol].tick_size;
        for index in fired {
            let order = &mut self.accounts.get_mut(key).expect("listed").orders[index];
            order.status = OrderStatus::Triggered;
            order.updated_at = now;
            if order.order_type == OrderType::Market {
                order.price = protective_price(order.side, price, tick);
            }
            self.push_order_position_wallet(key, index, now, pushes);
            self.accounts.get_mut(key).expect("listed").orders[index].status = OrderStatus::New;
            pushes.extend(self.match_on_arrival(key, index, now));
        }
    }

    fn fill_crossed_limits(
        &mut self,
        key: &str,
        symbol: &str,
        price: Decimal,
        max_fill_qty: Option<Decimal>,
        now: DateTime<Utc>,
        pushes: &mut Vec<Push>,
    ) {
        let account = &self.accounts[key];
        let crossed: Vec<usize> = account
            .open_order_indexes
            .iter()
            .copied()
            .filter(|&i| {
                let o = &account.orders[i];
                o.symbol == symbol
                    && o.status.is_working()
                    && o.order_type == OrderType::Limit
                    && limit_crossed(o.side, o.price, price)
            })
            .collect();
        for index in crossed {
            let limit_price = self.accounts[key].orders[index].price;
            self.fill(key, index, limit_price, true, max_fill_qty, now, pushes);
        }
    }

    /// Liquidation first (the mark crossed the liquidation price), else the stop that fires; then
    /// the position and wallet pushes that every price change of an open position sends.
    fn protect_positions(
        &mut self,
        key: &str,
        symbol: &str,
        price: Decimal,
        now: DateTime<Utc>,
        pushes: &mut Vec<Push>,
    ) {
        let slots: Vec<u8> = self.accounts[key]
            .positions
            .iter()
            .filter(|((s, _), p)| s == symbol && !p.size.is_zero())
            .map(|((_, idx), _)| *idx)
            .collect();
        for idx in slots {
            let account = &self.accounts[key];
            let position = &account.positions[&(symbol.to_string(), idx)];
            let liquidated = self
                .liq_price(account, position)
                .is_some_and(|liq| match position.side {
                    Some(Side::Buy) => price <= liq,
                    _ => price >= liq,
                });
            let account = self.accounts.get_mut(key).expect("listed");
            let position = account
                .positions
                .get_mut(&(symbol.to_string(), idx))
                .expect("listed");
            position.mark_price = price;
            let hit = if liquidated {
                Some(CreateType::CreateByLiq)
            } else {
                position.protection_hit(price)
            };
            match hit {
                Some(create_type) => self.close_by_exchange(key, symbol, idx, create_type, now, pushes),
                None => self.push_position_wallet(key, symbol, idx, now, pushes),
            }
        }
    }

    /// Pushes one position slot and the wallet (what a price change or a setting change shows).
    pub(super) fn push_position_wallet(
        &self,
        key: &str,
        symbol: &str,
        idx: u8,
        now: DateTime<Utc>,
        pushes: &mut Vec<Push>,
    ) {
        if !self.emit_pushes {
            return;
        }
        let account = &self.accounts[key];
        let position = account.position_snapshot(symbol, idx, now);
        pushes.push(Push::new(
            Topic::Position,
            vec![self.position_json(account, &position, true)],
        ));
        pushes.push(Push::new(
            Topic::Wallet,
            vec![self.margin_summary(account).wallet_json()],
        ));
    }

    /// The market order the exchange itself places to close a whole position: reduce-only, no
    /// orderLinkId, `createType` naming why. A liquidation first cancels the symbol's open orders.
    fn close_by_exchange(
        &mut self,
        key: &str,
        symbol: &str,
        idx: u8,
        create_type: CreateType,
        now: DateTime<Utc>,
        pushes: &mut Vec<Push>,
    ) {
        if create_type == CreateType::CreateByLiq {
            self.cancel_before_liquidation(key, symbol, now, pushes);
        }
        let instrument = &self.instruments[symbol];
        let last = instrument.price;
        let account = &self.accounts[key];
        let position = &account.positions[&(symbol.to_string(), idx)];
        let Some(position_side) = position.side else {
            return;
        };
        let side = position_side.opposite();
        let trigger_price = match create_type {
            CreateType::CreateByTakeProfit => position.take_profit,
            CreateType::CreateByStopLoss => position.stop_loss,
            CreateType::CreateByTrailingStop => position.trailing_trigger(),
            CreateType::CreateByLiq | CreateType::CreateByUser => None,
        };
        let order = Order {
            order_id: uuid::Uuid::new_v4().to_string(),
            order_link_id: String::new(),
            symbol: symbol.to_string(),
            side,
            order_type: OrderType::Market,
            time_in_force: TimeInForce::Ioc,
            qty: position.size,
            price: protective_price(side, last, instrument.tick_size),
            position_idx: idx,
            reduce_only: true,
            close_on_trigger: true,
            status: OrderStatus::New,
            cum_exec_qty: Decimal::ZERO,
            cum_exec_value: Decimal::ZERO,
            cum_exec_fee: Decimal::ZERO,
            avg_price: None,
            last_price_on_created: last,
            cancel_type: "UNKNOWN",
            reject_reason: "EC_NoError",
            create_type,
            trigger_price,
            trigger_direction: 0,
            trigger_by: trigger_price.map(|_| "LastPrice".to_string()),
            take_profit: None,
            stop_loss: None,
            closed_pnl: Decimal::ZERO,
            created_at: now,
            updated_at: now,
        };
        let index = self.book(key, order);
        self.fill(key, index, last, false, None, now, pushes);
    }

    fn cancel_before_liquidation(
        &mut self,
        key: &str,
        symbol: &str,
        now: DateTime<Utc>,
        pushes: &mut Vec<Push>,
    ) {
        let account = self.accounts.get_mut(key).expect("listed");
        let open: Vec<usize> = account
            .open_order_indexes
            .iter()
            .copied()
            .filter(|&i| account.orders[i].symbol == symbol)
            .collect();
        for index in open {
            let order = &mut self.accounts.get_mut(key).expect("listed").orders[index];
            order.status = if order.status == OrderStatus::Untriggered {
                OrderStatus::Deactivated
            } else {
                OrderStatus::Cancelled
            };
            order.cancel_type = "CancelAllBeforeLiq";
            order.updated_at = now;
            self.push_order_position_wallet(key, index, now, pushes);
        }
    }
}
