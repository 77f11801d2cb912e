//! An account's margin: equity, initial and maintenance margin of positions and resting orders, and
//! what is left available for new orders.

use rust_decimal::Decimal;

use super::{Account, ExchangeState};

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
            .filter(|o| o.status.is_open() && !o.reduce_only)
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
}
