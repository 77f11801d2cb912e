//! Positions: one slot per (symbol, positionIdx), and how a fill moves it.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use super::Side;

/// Maintenance margin as a share of position value (Bybit's first risk tier).
pub(super) const MAINTENANCE_MARGIN_RATE: Decimal = Decimal::from_parts(5, 0, 0, false, 3);

/// A position slot: (symbol, positionIdx). `size` is never negative; `side` is None when flat.
#[derive(Clone, Debug, Serialize)]
pub struct Position {
    pub symbol: String,
    pub position_idx: u8,
    pub side: Option<Side>,
    pub size: Decimal,
    pub avg_price: Decimal,
    pub leverage: Decimal,
    pub mark_price: Decimal,
    pub unrealised_pnl: Decimal,
    pub cur_realised_pnl: Decimal,
    pub cum_realised_pnl: Decimal,
    pub seq: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Position {
    pub(super) fn flat(symbol: &str, position_idx: u8, leverage: Decimal, now: DateTime<Utc>) -> Position {
        Position {
            symbol: symbol.to_string(),
            position_idx,
            side: None,
            size: Decimal::ZERO,
            avg_price: Decimal::ZERO,
            leverage,
            mark_price: Decimal::ZERO,
            unrealised_pnl: Decimal::ZERO,
            cur_realised_pnl: Decimal::ZERO,
            cum_realised_pnl: Decimal::ZERO,
            seq: 0,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn unrealised_at(&self, mark: Decimal) -> Decimal {
        match self.side {
            Some(Side::Buy) => (mark - self.avg_price) * self.size,
            Some(Side::Sell) => (self.avg_price - mark) * self.size,
            None => Decimal::ZERO,
        }
    }

    pub(super) fn initial_margin(&self) -> Decimal {
        self.size * self.avg_price / self.leverage
    }

    pub(super) fn maintenance_margin(&self) -> Decimal {
        self.size * self.avg_price * MAINTENANCE_MARGIN_RATE
    }

    /// Applies a fill of `qty` at `price` on `side`; returns the size it closed and the PnL of that
    /// part. An order larger than the opposite position flips it.
    pub(super) fn apply_fill(
        &mut self,
        side: Side,
        qty: Decimal,
        price: Decimal,
        closes: bool,
    ) -> (Decimal, Decimal) {
        if closes && !self.size.is_zero() {
            let closed_size = qty.min(self.size);
            let pnl = match self.side {
                Some(Side::Buy) => (price - self.avg_price) * closed_size,
                _ => (self.avg_price - price) * closed_size,
            };
            self.size -= closed_size;
            let opening = qty - closed_size;
            if self.size.is_zero() {
                self.side = None;
                self.avg_price = Decimal::ZERO;
                if !opening.is_zero() {
                    self.side = Some(side);
                    self.size = opening;
                    self.avg_price = price;
                }
            }
            (closed_size, pnl)
        } else {
            let new_size = self.size + qty;
            self.avg_price = ((self.avg_price * self.size + price * qty) / new_size).round_dp(10);
            self.size = new_size;
            self.side = Some(side);
            (Decimal::ZERO, Decimal::ZERO)
        }
    }
}
