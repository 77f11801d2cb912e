//! The checks of an order's extras: a conditional order's trigger (price, direction, price kind)
//! and order-attached TP/SL (tpslMode Full), each on the right side of the price; trading-stop
//! uses the same side rule.

use rust_decimal::Decimal;

use super::{EngineResult, OrderRequest, OrderType, Side};
use crate::bybit_error::BybitError;

/// A conditional order's trigger and an order's attached TP/SL, checked against the last price.
#[derive(Default)]
pub(super) struct Extras {
    pub trigger_price: Option<Decimal>,
    pub trigger_direction: u8,
    pub trigger_by: Option<String>,
    pub take_profit: Option<Decimal>,
    pub stop_loss: Option<Decimal>,
}

fn optional_price(text: Option<&str>, field: &str) -> EngineResult<Option<Decimal>> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => match t.parse::<Decimal>() {
            // Bybit reads "0" as "not set" for trigger and TP/SL prices.
            Ok(p) if p.is_zero() => Ok(None),
            Ok(p) if p > Decimal::ZERO => Ok(Some(p)),
            _ => Err(BybitError::params(format!("params error: {field} invalid"))),
        },
    }
}

/// triggerPrice with triggerDirection (1: fires when the price rises to it, 2: when it falls to
/// it; the trigger must lie that way from the last price: 110092/110093), and TP/SL on the right
/// side of the price the order opens at (take profit above a buy, stop loss below it).
pub(super) fn checked_extras(
    request: &OrderRequest,
    side: Side,
    order_type: OrderType,
    last: Decimal,
) -> EngineResult<Extras> {
    let trigger_price = optional_price(request.trigger_price.as_deref(), "triggerPrice")?;
    let trigger_direction = match (trigger_price, request.trigger_direction) {
        (None, _) => 0,
        (Some(t), Some(1)) if t <= last => {
            return Err(BybitError::new(
                110092,
                format!("expect Rising, but trigger_price[{t}] <= current[{last}]"),
            ));
        }
        (Some(t), Some(2)) if t >= last => {
            return Err(BybitError::new(
                110093,
                format!("expect Falling, but trigger_price[{t}] >= current[{last}]"),
            ));
        }
        (Some(_), Some(d @ (1 | 2))) => d as u8,
        (Some(_), _) => return Err(BybitError::params("params error: triggerDirection invalid")),
    };
    let trigger_by = match request.trigger_by.as_deref() {
        None | Some("") if trigger_price.is_some() => Some("LastPrice".to_string()),
        None | Some("") => None,
        Some(by @ ("LastPrice" | "MarkPrice" | "IndexPrice")) => Some(by.to_string()),
        Some(other) => {
            return Err(BybitError::params(format!(
                "params error: triggerBy invalid {other}"
            )));
        }
    };
    let take_profit = optional_price(request.take_profit.as_deref(), "takeProfit")?;
    let stop_loss = optional_price(request.stop_loss.as_deref(), "stopLoss")?;
    if (take_profit.is_some() || stop_loss.is_some()) && request.reduce_only {
        return Err(BybitError::params(
            "params error: TP/SL cannot be attached to a reduce-only order",
        ));
    }
    if !matches!(request.tpsl_mode.as_deref(), None | Some("") | Some("Full")) {
        return Err(BybitError::params(
            "params error: tpslMode invalid (the paper exchange supports Full)",
        ));
    }
    // The price the position will open at: the trigger, the limit price, else the last price.
    let limit_price = request.price.as_deref().and_then(|p| p.parse().ok());
    let base = match (trigger_price, order_type) {
        (Some(trigger), _) => trigger,
        (None, OrderType::Limit) => limit_price.unwrap_or(last),
        (None, OrderType::Market) => last,
    };
    check_tpsl_side(side, base, take_profit, stop_loss)?;
    Ok(Extras {
        trigger_price,
        trigger_direction,
        trigger_by,
        take_profit,
        stop_loss,
    })
}

/// A long's take profit lies above `base` and its stop loss below; a short's the other way round.
pub(super) fn check_tpsl_side(
    side: Side,
    base: Decimal,
    take_profit: Option<Decimal>,
    stop_loss: Option<Decimal>,
) -> EngineResult<()> {
    let long = side == Side::Buy;
    if let Some(tp) = take_profit
        && (if long { tp <= base } else { tp >= base })
    {
        let way = if long { "higher" } else { "lower" };
        return Err(BybitError::params(format!(
            "TakeProfit:{tp} set for {} position should be {way} than base_price:{base}",
            side.as_str()
        )));
    }
    if let Some(sl) = stop_loss
        && (if long { sl >= base } else { sl <= base })
    {
        let way = if long { "lower" } else { "higher" };
        return Err(BybitError::params(format!(
            "StopLoss:{sl} set for {} position should be {way} than base_price:{base}",
            side.as_str()
        )));
    }
    Ok(())
}
