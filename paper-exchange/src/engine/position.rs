//! Positions: one slot per (symbol, positionIdx), the rule deciding whether an order closes it, how
//! a fill moves it, and its protection (take profit, stop loss, trailing stop).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use super::{CreateType, Side};

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
    /// Fees paid opening the current size; a close charges its share to `closedPnl`, as Bybit does.
    pub open_fees: Decimal,
    /// Position-level protection (tpslMode Full); cleared when the position goes flat.
    pub take_profit: Option<Decimal>,
    pub stop_loss: Option<Decimal>,
    /// Trailing stop distance, its activation price, and the best price seen since it activated.
    pub trailing_stop: Option<Decimal>,
    pub active_price: Option<Decimal>,
    pub trail_peak: Option<Decimal>,
    /// Filled in by the control API's view only; the engine computes it from the account each time.
    pub liq_price: Option<Decimal>,
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
            open_fees: Decimal::ZERO,
            take_profit: None,
            stop_loss: None,
            trailing_stop: None,
            active_price: None,
            trail_peak: None,
            liq_price: None,
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

    /// The one rule for "this order reduces this slot": in one-way mode (idx 0) an order against the
    /// position's side; in hedge mode a Sell on the long slot (1) or a Buy on the short slot (2),
    /// whatever the slot holds.
    pub fn order_closes(&self, order_side: Side) -> bool {
        match self.position_idx {
            1 => order_side == Side::Sell,
            2 => order_side == Side::Buy,
            _ => self.side == Some(order_side.opposite()),
        }
    }

    /// Applies a fill of `qty` at `price` on `side` paying `fee`; returns the size it closed, the
    /// gross PnL of that part and the opening fees that part carried. An order larger than the
    /// opposite position flips it.
    pub(super) fn apply_fill(
        &mut self,
        side: Side,
        qty: Decimal,
        price: Decimal,
        fee: Decimal,
    ) -> FillEffect {
        if self.order_closes(side) && !self.size.is_zero() {
            let closed_size = qty.min(self.size);
            let pnl = match self.side {
                Some(Side::Buy) => (price - self.avg_price) * closed_size,
                _ => (self.avg_price - price) * closed_size,
            };
            let open_fees = (self.open_fees * closed_size / self.size).round_dp(8);
            self.open_fees -= open_fees;
            self.size -= closed_size;
            let opening = qty - closed_size;
            if self.size.is_zero() {
                self.side = None;
                self.avg_price = Decimal::ZERO;
                self.open_fees = Decimal::ZERO;
                self.clear_protection();
                if !opening.is_zero() {
                    self.side = Some(side);
                    self.size = opening;
                    self.avg_price = price;
                    self.open_fees = (fee * opening / qty).round_dp(8);
                }
            }
            FillEffect {
                closed_size,
                pnl,
                open_fees,
            }
        } else {
            let new_size = self.size + qty;
            self.avg_price = ((self.avg_price * self.size + price * qty) / new_size).round_dp(10);
            self.size = new_size;
            self.side = Some(side);
            self.open_fees += fee;
            FillEffect::default()
        }
    }

    pub(super) fn clear_protection(&mut self) {
        self.take_profit = None;
        self.stop_loss = None;
        self.trailing_stop = None;
        self.active_price = None;
        self.trail_peak = None;
    }

    /// What a new price does to the protection: moves the trailing peak, and names the stop that
    /// fires, if any (stop loss before take profit before trailing, as the worse outcome wins).
    pub(super) fn protection_hit(&mut self, price: Decimal) -> Option<CreateType> {
        let long = match self.side {
            Some(side) if !self.size.is_zero() => side == Side::Buy,
            _ => return None,
        };
        // Beyond the price in the position's favour: long above, short below.
        let beyond = |a: Decimal, b: Decimal| if long { a >= b } else { a <= b };
        if self.trailing_stop.is_some() {
            let activated = self.trail_peak.is_some() || self.active_price.is_none_or(|p| beyond(price, p));
            if activated {
                self.trail_peak = Some(match self.trail_peak {
                    Some(peak) if beyond(peak, price) => peak,
                    _ => price,
                });
            }
        }
        if self.stop_loss.is_some_and(|sl| beyond(sl, price)) {
            return Some(CreateType::CreateByStopLoss);
        }
        if self.take_profit.is_some_and(|tp| beyond(price, tp)) {
            return Some(CreateType::CreateByTakeProfit);
        }
        if self.trailing_trigger().is_some_and(|stop| beyond(stop, price)) {
            return Some(CreateType::CreateByTrailingStop);
        }
        None
    }

    /// The trailing stop's current trigger price, once it is active.
    pub fn trailing_trigger(&self) -> Option<Decimal> {
        let (distance, peak) = (self.trailing_stop?, self.trail_peak?);
        Some(match self.side? {
            Side::Buy => peak - distance,
            Side::Sell => peak + distance,
        })
    }
}

/// What one fill did to a position.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct FillEffect {
    pub closed_size: Decimal,
    /// Gross PnL of the closed part (Bybit's `execPnl`).
    pub pnl: Decimal,
    /// The opening fees the closed part carried.
    pub open_fees: Decimal,
}
