//! An account's margin: equity, initial and maintenance margin of positions and resting orders,
//! what is left available for new orders, and each position's liquidation price (the model is
//! described in paper-exchange/README.md, item "Margin and liquidation").

use rust_decimal::Decimal;

use super::position::MAINTENANCE_MARGIN_RATE;
use super::{Account, ExchangeState, MarginMode, Position, Side};

/// Totals of one account's margin, all in USDT.
#[derive(Clone, Copy, Debug)]
pub struct MarginSummary {
    pub wallet_balance: Decimal,
    pub unrealised_pnl: Decimal,
    pub equity: Decimal,
    pub position_im: Decimal,
    pub position_mm: Decimal,
    pub order_im: Decimal,
    pub available: Decimal,
    pub cum_realised_pnl: Decimal,
}

impl ExchangeState {
    pub fn margin_summary(&self, account: &Account) -> MarginSummary {
        let mut unrealised = Decimal::ZERO;
        let mut position_im = Decimal::ZERO;
        let mut position_mm = Decimal::ZERO;
        for p in account.positions.values() {
            if p.size.is_zero() {
                continue;
            }
            let mark = self
                .instruments
                .get(&p.symbol)
                .map(|i| i.price)
                .unwrap_or(p.avg_price);
            unrealised += p.unrealised_at(mark);
            position_im += p.initial_margin();
            position_mm += p.maintenance_margin();
        }
        let order_im: Decimal = account
            .open_order_indexes
            .iter()
            .map(|&i| &account.orders[i])
            .filter(|o| o.status.is_working() && !o.reduce_only)
            .map(|o| o.leaves_qty() * o.price / account.leverage(&o.symbol))
            .sum();
        let equity = account.wallet_balance + unrealised;
        let available = (equity - position_im - order_im).max(Decimal::ZERO);
        MarginSummary {
            wallet_balance: account.wallet_balance,
            unrealised_pnl: unrealised,
            equity,
            position_im,
            position_mm,
            order_im,
            available,
            cum_realised_pnl: account.cum_realised_pnl,
        }
    }

    /// The mark price at which `position` is liquidated, `None` when flat or never (a cross long
    /// whose account could carry it to zero).
    ///
    /// Isolated: the position's own margin (size × entry / leverage) is all it can lose, down to
    /// maintenance margin. Cross (regular or portfolio): the whole equity backs it, the other
    /// positions held at their current mark.
    pub fn liq_price(&self, account: &Account, position: &Position) -> Option<Decimal> {
        let side = position.side?;
        if position.size.is_zero() {
            return None;
        }
        let entry = position.avg_price;
        let price = match account.margin_mode {
            MarginMode::Isolated => {
                let distance = Decimal::ONE / position.leverage - MAINTENANCE_MARGIN_RATE;
                match side {
                    Side::Buy => entry * (Decimal::ONE - distance),
                    Side::Sell => entry * (Decimal::ONE + distance),
                }
            }
            MarginMode::Regular | MarginMode::Portfolio => {
                let summary = self.margin_summary(account);
                let own_upl = position.unrealised_at(self.mark(&position.symbol, entry));
                let others_equity = summary.equity - own_upl;
                let cushion = (others_equity - summary.position_mm) / position.size;
                match side {
                    Side::Buy => entry - cushion,
                    Side::Sell => entry + cushion,
                }
            }
        };
        let tick = self.instruments.get(&position.symbol).map(|i| i.tick_size)?;
        let price = super::round_to_step(price, tick);
        (price > Decimal::ZERO).then_some(price)
    }

    fn mark(&self, symbol: &str, fallback: Decimal) -> Decimal {
        self.instruments.get(symbol).map(|i| i.price).unwrap_or(fallback)
    }
}
