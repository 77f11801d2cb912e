//! Order intake: `/v5/order/create` checked rule by rule in Bybit's order (the first failing rule
//! decides the code: docs/bybit.md#order-create-validation-order), booked, then handed to matching; and `/v5/order/cancel`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::conditions::checked_extras;
use super::matching::TAKER_FEE_RATE;
use super::{
    Account, CreateType, EngineResult, ExchangeState, Instrument, Order, OrderStatus, OrderType, Position,
    Push, Side, TimeInForce, round_to_step,
};
use crate::bybit_error::BybitError;
use crate::config::PositionMode;

/// Market orders become IOC limits at this distance from the last price (Bybit's protective price).
pub(super) const PROTECTIVE_PRICE_RATIO: Decimal = Decimal::from_parts(5, 0, 0, false, 2);

/// The parsed, not yet validated fields of an order create request.
#[derive(Clone, Debug, Default)]
pub struct OrderRequest {
    pub category: Option<String>,
    pub symbol: Option<String>,
    pub side: Option<String>,
    pub order_type: Option<String>,
    pub qty: Option<String>,
    pub price: Option<String>,
    pub time_in_force: Option<String>,
    pub order_link_id: Option<String>,
    pub position_idx: Option<i64>,
    pub reduce_only: bool,
    pub close_on_trigger: bool,
    pub trigger_price: Option<String>,
    pub trigger_direction: Option<i64>,
    pub trigger_by: Option<String>,
    pub take_profit: Option<String>,
    pub stop_loss: Option<String>,
    pub tpsl_mode: Option<String>,
}

/// A request whose own fields are valid; nothing that needs the account is checked yet.
struct Parsed<'r> {
    request: &'r OrderRequest,
    instrument: Instrument,
    side: Side,
    order_type: OrderType,
    time_in_force: TimeInForce,
    qty: Decimal,
}

impl Parsed<'_> {
    /// Bybit caps market orders lower than resting ones.
    fn max_qty(&self) -> Decimal {
        match self.order_type {
            OrderType::Market => self.instrument.max_mkt_order_qty,
            OrderType::Limit => self.instrument.max_order_qty,
        }
    }
}

/// The position slot an order acts on, as it is before the order.
struct Slot {
    position_idx: u8,
    position: Position,
    /// The order reduces the slot rather than adds to it.
    closes: bool,
    /// In hedge mode an order on the slot's other side can only close it, as if reduce-only.
    hedge_close: bool,
}

impl ExchangeState {
    /// Validates and places an order, filling it at once when it can.
    pub fn create_order(
        &mut self,
        api_key: &str,
        request: &OrderRequest,
        now: DateTime<Utc>,
    ) -> EngineResult<(Order, Vec<Push>)> {
        let parsed = self.parse_request(request)?;
        let account = self
            .accounts
            .get(api_key)
            .ok_or_else(BybitError::invalid_api_key)?;
        let slot = slot_for(account, &parsed, now)?;
        let order_link_id = checked_order_link_id(account, request)?;
        let extras = checked_extras(request, parsed.side, parsed.order_type, parsed.instrument.price)?;
        let qty = lot_checked_qty(&parsed, &slot)?;
        let price = order_price(&parsed)?;
        let reference_price = match parsed.order_type {
            OrderType::Market => parsed.instrument.price,
            OrderType::Limit => price,
        };
        check_min_notional(&parsed, qty, reference_price)?;
        let qty = if request.reduce_only || slot.hedge_close {
            reduce_only_qty(&slot, qty)?
        } else {
            self.check_margin(account, &parsed, &slot, qty, reference_price)?;
            qty
        };

        let conditional = extras.trigger_price.is_some();
        let mut order = new_order(&parsed, &slot, order_link_id, qty, price, now);
        order.trigger_price = extras.trigger_price;
        order.trigger_direction = extras.trigger_direction;
        order.trigger_by = extras.trigger_by;
        order.take_profit = extras.take_profit;
        order.stop_loss = extras.stop_loss;
        let index = self.book(api_key, order);
        let pushes = if conditional {
            self.accounts.get_mut(api_key).expect("checked above").orders[index].status =
                OrderStatus::Untriggered;
            let mut pushes = Vec::new();
            self.push_order_position_wallet(api_key, index, now, &mut pushes);
            pushes
        } else {
            self.match_on_arrival(api_key, index, now)
        };
        Ok((self.accounts[api_key].orders[index].clone(), pushes))
    }

    /// Category, symbol, side, order type, time in force and quantity, each parsed on its own.
    fn parse_request<'r>(&self, request: &'r OrderRequest) -> EngineResult<Parsed<'r>> {
        if request.category.as_deref() != Some("linear") {
            return Err(BybitError::params(format!(
                "params error: category invalid {}",
                request.category.as_deref().unwrap_or("")
            )));
        }
        let symbol = request.symbol.as_deref().unwrap_or("");
        let instrument = self
            .instruments
            .get(symbol)
            .cloned()
            .ok_or_else(|| BybitError::params(format!("params error: symbol invalid {symbol}")))?;
        let side = match request.side.as_deref() {
            Some("Buy") => Side::Buy,
            Some("Sell") => Side::Sell,
            other => {
                return Err(BybitError::params(format!(
                    "params error: side invalid {}",
                    other.unwrap_or("")
                )));
            }
        };
        let order_type = match request.order_type.as_deref() {
            Some("Market") => OrderType::Market,
            Some("Limit") => OrderType::Limit,
            other => {
                return Err(BybitError::params(format!(
                    "params error: orderType invalid {}",
                    other.unwrap_or("")
                )));
            }
        };
        let time_in_force = match (order_type, request.time_in_force.as_deref()) {
            (OrderType::Market, _) => TimeInForce::Ioc,
            (OrderType::Limit, None | Some("GTC") | Some("")) => TimeInForce::Gtc,
            (OrderType::Limit, Some("IOC")) => TimeInForce::Ioc,
            (OrderType::Limit, Some("FOK")) => TimeInForce::Fok,
            (OrderType::Limit, Some("PostOnly")) => TimeInForce::PostOnly,
            (_, Some(other)) => {
                return Err(BybitError::params(format!(
                    "params error: timeInForce invalid {other}"
                )));
            }
        };
        let qty = request
            .qty
            .as_deref()
            .and_then(|q| q.parse::<Decimal>().ok())
            .filter(|q| !q.is_sign_negative())
            .ok_or_else(|| BybitError::params("params error: qty invalid"))?;
        Ok(Parsed {
            request,
            instrument,
            side,
            order_type,
            time_in_force,
            qty,
        })
    }

    /// The margin an order opens must be available: what it adds beyond the position it closes,
    /// at the reference price, plus the taker fee.
    fn check_margin(
        &self,
        account: &Account,
        parsed: &Parsed,
        slot: &Slot,
        qty: Decimal,
        reference_price: Decimal,
    ) -> EngineResult<()> {
        let opening_qty = if slot.closes {
            (qty - slot.position.size).max(Decimal::ZERO)
        } else {
            qty
        };
        let leverage = account.leverage(&parsed.instrument.symbol);
        let needed =
            opening_qty * reference_price / leverage + opening_qty * reference_price * TAKER_FEE_RATE;
        if needed > self.margin_summary(account).available {
            return Err(BybitError::new(110007, "ab not enough for new order"));
        }
        Ok(())
    }

    /// Adds an order to its account's book and indexes; returns its index.
    pub(super) fn book(&mut self, api_key: &str, order: Order) -> usize {
        let account = self.accounts.get_mut(api_key).expect("checked by create_order");
        let index = account.orders.len();
        account.order_index_by_id.insert(order.order_id.clone(), index);
        if !order.order_link_id.is_empty() {
            account
                .order_index_by_link_id
                .insert(order.order_link_id.clone(), index);
        }
        account.orders.push(order);
        index
    }

    pub fn cancel_order(
        &mut self,
        api_key: &str,
        symbol: &str,
        order_id: Option<&str>,
        order_link_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> EngineResult<(Order, Vec<Push>)> {
        let account = self
            .accounts
            .get_mut(api_key)
            .ok_or_else(BybitError::invalid_api_key)?;
        let index = match (
            order_id.filter(|s| !s.is_empty()),
            order_link_id.filter(|s| !s.is_empty()),
        ) {
            (Some(id), _) => account.order_index_by_id.get(id).copied(),
            (None, Some(link)) => account.order_index_by_link_id.get(link).copied(),
            (None, None) => {
                return Err(BybitError::params(
                    "params error: orderId or orderLinkId is required",
                ));
            }
        };
        let index = index
            .filter(|&i| account.orders[i].symbol == symbol)
            .ok_or_else(|| BybitError::new(110001, "order not exists or too late to cancel"))?;
        let order = &mut account.orders[index];
        if !order.status.is_open() {
            return Err(BybitError::new(110001, "order not exists or too late to cancel"));
        }
        order.status = if order.status == OrderStatus::Untriggered {
            OrderStatus::Deactivated
        } else {
            OrderStatus::Cancelled
        };
        order.cancel_type = "CancelByUser";
        order.updated_at = now;
        let mut pushes = Vec::new();
        self.push_order_position_wallet(api_key, index, now, &mut pushes);
        Ok((self.accounts[api_key].orders[index].clone(), pushes))
    }

    /// `/v5/order/cancel-all` for one symbol: every open order (conditional ones included).
    pub fn cancel_all(
        &mut self,
        api_key: &str,
        symbol: &str,
        now: DateTime<Utc>,
    ) -> EngineResult<(Vec<Order>, Vec<Push>)> {
        let account = self
            .accounts
            .get(api_key)
            .ok_or_else(BybitError::invalid_api_key)?;
        let ids: Vec<String> = account
            .open_order_indexes
            .iter()
            .map(|&i| &account.orders[i])
            .filter(|o| o.symbol == symbol && o.status.is_open())
            .map(|o| o.order_id.clone())
            .collect();
        let mut cancelled = Vec::new();
        let mut pushes = Vec::new();
        for id in ids {
            let (order, more) = self.cancel_order(api_key, symbol, Some(&id), None, now)?;
            cancelled.push(order);
            pushes.extend(more);
        }
        Ok((cancelled, pushes))
    }
}

/// The slot named by positionIdx, which must match the account's position mode.
fn slot_for(account: &Account, parsed: &Parsed, now: DateTime<Utc>) -> EngineResult<Slot> {
    let mode = account.spec.position_mode;
    let position_idx = match (mode, parsed.request.position_idx.unwrap_or(0)) {
        (PositionMode::OneWay, 0) => 0u8,
        (PositionMode::Hedge, idx @ (1 | 2)) => idx as u8,
        _ => return Err(BybitError::params("position idx not match position mode")),
    };
    let position = account.position_snapshot(&parsed.instrument.symbol, position_idx, now);
    let closes = position.order_closes(parsed.side);
    Ok(Slot {
        position_idx,
        position,
        closes,
        hedge_close: mode == PositionMode::Hedge && closes,
    })
}

/// An orderLinkId is optional, at most 36 of `[A-Za-z0-9_-]`, and unique within the account.
fn checked_order_link_id(account: &Account, request: &OrderRequest) -> EngineResult<String> {
    let order_link_id = request.order_link_id.clone().unwrap_or_default();
    if order_link_id.is_empty() {
        return Ok(order_link_id);
    }
    let well_formed = order_link_id.len() <= 36
        && order_link_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(BybitError::params(
            "params error: orderLinkId must be at most 36 characters of letters, digits, - and _",
        ));
    }
    if account.order_index_by_link_id.contains_key(&order_link_id) {
        return Err(BybitError::new(110072, "OrderLinkedID is duplicate"));
    }
    Ok(order_link_id)
}

/// The quantity checked against the lot filters; `qty:"0"` with reduceOnly and closeOnTrigger
/// means the whole position (capped at the order type's maximum).
fn lot_checked_qty(parsed: &Parsed, slot: &Slot) -> EngineResult<Decimal> {
    let instrument = &parsed.instrument;
    let qty = parsed.qty;
    let max = parsed.max_qty();
    let close_whole_position = qty.is_zero() && parsed.request.reduce_only && parsed.request.close_on_trigger;
    if close_whole_position {
        if slot.position.size.is_zero() || !slot.closes {
            return Err(BybitError::new(
                110017,
                "current position is zero, cannot fix reduce-only order qty",
            ));
        }
        return Ok(slot.position.size.min(max));
    }
    if qty < instrument.min_order_qty {
        return Err(BybitError::params(
            "The number of contracts exceeds minimum limit allowed",
        ));
    }
    if !(qty % instrument.qty_step).is_zero() {
        return Err(BybitError::params(format!(
            "Qty invalid: qty {} is not a multiple of qtyStep {}",
            qty.normalize(),
            instrument.qty_step.normalize()
        )));
    }
    if qty > max {
        let scale = Decimal::from(100_000_000);
        return Err(BybitError::params(format!(
            "The number of contracts exceeds maximum limit allowed: too large, order_qty:{} > max_qty:{}",
            (qty * scale).normalize(),
            (max * scale).normalize()
        )));
    }
    Ok(qty)
}

/// The IOC limit price Bybit gives a market order: the last price moved against the taker.
pub(super) fn protective_price(side: Side, last: Decimal, tick: Decimal) -> Decimal {
    let protective = match side {
        Side::Buy => last * (Decimal::ONE + PROTECTIVE_PRICE_RATIO),
        Side::Sell => last * (Decimal::ONE - PROTECTIVE_PRICE_RATIO),
    };
    round_to_step(protective, tick)
}

/// A limit order's price on the tick grid, or for a market order the protective price Bybit reports.
fn order_price(parsed: &Parsed) -> EngineResult<Decimal> {
    let instrument = &parsed.instrument;
    match parsed.order_type {
        OrderType::Market => Ok(protective_price(
            parsed.side,
            instrument.price,
            instrument.tick_size,
        )),
        OrderType::Limit => {
            let price = parsed
                .request
                .price
                .as_deref()
                .and_then(|p| p.parse::<Decimal>().ok())
                .filter(|p| *p > Decimal::ZERO)
                .ok_or_else(|| BybitError::params("params error: price invalid"))?;
            if !(price % instrument.tick_size).is_zero() {
                return Err(BybitError::params(format!(
                    "params error: price {} is not a multiple of tickSize {}",
                    price.normalize(),
                    instrument.tick_size.normalize()
                )));
            }
            Ok(price)
        }
    }
}

/// Orders that may open a position must be worth at least the instrument's minimum notional.
fn check_min_notional(parsed: &Parsed, qty: Decimal, reference_price: Decimal) -> EngineResult<()> {
    let min_notional = parsed.instrument.min_notional;
    if !parsed.request.reduce_only && qty * reference_price < min_notional {
        return Err(BybitError::new(
            110094,
            format!(
                "Order does not meet minimum order value {}USDT",
                min_notional.normalize()
            ),
        ));
    }
    Ok(())
}

/// A reduce-only order needs a position on the other side, and Bybit truncates its quantity to it.
fn reduce_only_qty(slot: &Slot, qty: Decimal) -> EngineResult<Decimal> {
    if slot.position.size.is_zero() {
        return Err(BybitError::new(
            110017,
            "current position is zero, cannot fix reduce-only order qty",
        ));
    }
    if !slot.closes {
        return Err(BybitError::new(110017, "Reduce-only rule not satisfied"));
    }
    Ok(qty.min(slot.position.size))
}

fn new_order(
    parsed: &Parsed,
    slot: &Slot,
    order_link_id: String,
    qty: Decimal,
    price: Decimal,
    now: DateTime<Utc>,
) -> Order {
    Order {
        order_id: uuid::Uuid::new_v4().to_string(),
        order_link_id,
        symbol: parsed.instrument.symbol.clone(),
        side: parsed.side,
        order_type: parsed.order_type,
        time_in_force: parsed.time_in_force,
        qty,
        price,
        position_idx: slot.position_idx,
        reduce_only: parsed.request.reduce_only,
        close_on_trigger: parsed.request.close_on_trigger,
        status: OrderStatus::New,
        cum_exec_qty: Decimal::ZERO,
        cum_exec_value: Decimal::ZERO,
        cum_exec_fee: Decimal::ZERO,
        avg_price: None,
        last_price_on_created: parsed.instrument.price,
        cancel_type: "UNKNOWN",
        reject_reason: "EC_NoError",
        create_type: CreateType::CreateByUser,
        trigger_price: None,
        trigger_direction: 0,
        trigger_by: None,
        take_profit: None,
        stop_loss: None,
        closed_pnl: Decimal::ZERO,
        created_at: now,
        updated_at: now,
    }
}
