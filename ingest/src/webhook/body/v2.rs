//! The trading-language fields of a body (docs/api.md#webhook-body-v2) and every rule between two
//! fields: what to trade, how to enter, what protection to keep. Rules about one field's value
//! live in `humbex_shared::domain::trade`; this module decides which fields fit together, and
//! refuses a contradiction with a 400 that names both fields.

use humbex_shared::domain::trade::{
    Level, Leverage, MAX_CANCEL_AFTER_SECS, MAX_LAG_SECS, MarginMode, OrderType, Percent, QuantityType,
    SignedQty, TimeInForce, TradeSpec, TrailingStop,
};
use humbex_shared::domain::{Action, Price, Qty};

use super::values::{break_even, choice, level, price_field, seconds, trailing_stop};
use super::{BodyError, WireSignal, conflict, decimal_text, field};

/// What a body asks to trade: the quantity (in `trade.quantity_type` units), the reference price,
/// and the v2 fields.
pub(super) struct Sized {
    pub quantity: Option<Qty>,
    pub price: Option<Price>,
    pub trade: TradeSpec,
}

/// Which way the position the signal leads to points, when the body says.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Long,
    Short,
}

pub(super) fn parse(wire: &WireSignal<'_>, action: Action) -> Result<Sized, BodyError> {
    // Quantity first, as v1 did, so a v1 body's first error names the same field.
    let target_position = match decimal_text(wire.target_position, "target_position")? {
        Some(text) => Some(SignedQty::parse(&text).map_err(|e| field("target_position", e.to_string()))?),
        None => None,
    };
    let quantity_type = choice::<QuantityType>(wire.quantity_type, "quantity_type", QuantityType::NAMES)?;
    let quantity_text = decimal_text(wire.quantity, "quantity")?;
    let quantity = quantity(action, quantity_text.as_deref(), quantity_type, target_position)?;
    let price = match decimal_text(wire.price, "price")? {
        Some(text) => Some(Price::parse(&text).map_err(|e| field("price", e.to_string()))?),
        None => None,
    };

    let order_type = choice::<OrderType>(wire.order_type, "order_type", OrderType::NAMES)?;
    let limit_price = price_field(wire.limit_price, "limit_price")?;
    let time_in_force = choice::<TimeInForce>(wire.time_in_force, "time_in_force", TimeInForce::NAMES)?;
    let cancel_after_secs = seconds(wire.cancel_after_secs, "cancel_after_secs", MAX_CANCEL_AFTER_SECS)?;
    let trigger_price = price_field(wire.trigger_price, "trigger_price")?;
    let take_profit = level(wire.take_profit, "take_profit", Percent::parse)?;
    let stop_loss = level(wire.stop_loss, "stop_loss", Percent::parse_distance)?;
    let trailing_stop = trailing_stop(wire.trailing_stop)?;
    let break_even = break_even(wire.break_even)?;
    let leverage = match decimal_text(wire.leverage, "leverage")? {
        Some(text) => Some(Leverage::parse(&text).map_err(|e| field("leverage", e.to_string()))?),
        None => None,
    };
    let margin_mode = choice::<MarginMode>(wire.margin_mode, "margin_mode", MarginMode::NAMES)?;
    let max_lag_secs = seconds(wire.max_lag_secs, "max_lag_secs", MAX_LAG_SECS)?;

    let protection: [(&'static str, bool); 4] = [
        ("take_profit", take_profit.is_some()),
        ("stop_loss", stop_loss.is_some()),
        ("trailing_stop", trailing_stop.is_some()),
        ("break_even", break_even.is_some()),
    ];

    if action == Action::Cancel {
        // A cancel names a symbol and nothing to trade; `max_lag_secs` still applies to it.
        for (name, given) in [
            ("quantity", quantity_text.is_some()),
            ("target_position", target_position.is_some()),
            ("quantity_type", quantity_type.is_some()),
            ("order_type", order_type.is_some()),
            ("limit_price", limit_price.is_some()),
            ("time_in_force", time_in_force.is_some()),
            ("cancel_after_secs", cancel_after_secs.is_some()),
            ("trigger_price", trigger_price.is_some()),
            ("leverage", leverage.is_some()),
            ("margin_mode", margin_mode.is_some()),
        ]
        .into_iter()
        .chain(protection)
        {
            if given {
                return Err(conflict(
                    name,
                    "action",
                    "action cancel cancels the open orders on the symbol and takes no order fields",
                ));
            }
        }
    }
    if action == Action::Close {
        if let Some((name, _)) = protection.iter().find(|(_, given)| *given) {
            return Err(conflict(
                name,
                "action",
                "close flattens the position, so there is nothing left to protect",
            ));
        }
        if trigger_price.is_some() {
            return Err(conflict(
                "trigger_price",
                "action",
                "a conditional entry needs buy or sell (a stop_loss protects a position)",
            ));
        }
    }
    if let Some(target) = target_position {
        if trigger_price.is_some() {
            return Err(conflict(
                "trigger_price",
                "target_position",
                "a position sync trades the difference now; a conditional entry needs buy or sell with quantity",
            ));
        }
        if target.get().is_zero()
            && let Some((name, _)) = protection.iter().find(|(_, given)| *given)
        {
            return Err(conflict(
                name,
                "target_position",
                "a target of 0 is flat, so there is nothing to protect",
            ));
        }
    }
    match quantity_type {
        Some(QuantityType::RiskPercent) if stop_loss.is_none() => {
            return Err(conflict(
                "quantity_type",
                "stop_loss",
                "risk_percent sizes the order from the distance to the stop loss, so it needs stop_loss",
            ));
        }
        Some(QuantityType::PositionPercent) => {
            if let Some((name, _)) = protection.iter().find(|(_, given)| *given) {
                return Err(conflict(
                    name,
                    "quantity_type",
                    "position_percent only reduces the position, so there is nothing new to protect",
                ));
            }
        }
        _ => {}
    }

    let order_type_given = order_type.is_some();
    let order_type = order_type.unwrap_or_default();
    match (order_type, limit_price) {
        (OrderType::Limit, None) => {
            return Err(conflict(
                "limit_price",
                "order_type",
                "order_type limit needs limit_price",
            ));
        }
        (OrderType::Market, Some(_)) => {
            return Err(conflict(
                "limit_price",
                "order_type",
                if order_type_given {
                    "a market order has no limit price"
                } else {
                    "a limit price needs order_type limit (the default is market)"
                },
            ));
        }
        _ => {}
    }
    // A market order fills at once or not at all: Bybit treats it as IOC whatever it is sent
    // with. So `ioc` is accepted (it says what happens), and a time in force that asks it to rest
    // or to be a maker is a contradiction.
    if order_type == OrderType::Market
        && let Some(tif @ (TimeInForce::Gtc | TimeInForce::Fok | TimeInForce::PostOnly)) = time_in_force
    {
        return Err(conflict(
            "time_in_force",
            "order_type",
            format!("a market order fills at once (ioc); {tif} needs order_type limit"),
        ));
    }
    if cancel_after_secs.is_some() && order_type == OrderType::Market && trigger_price.is_none() {
        return Err(conflict(
            "cancel_after_secs",
            "order_type",
            "only a resting order (order_type limit, or an entry with trigger_price) can be cancelled after a time",
        ));
    }

    let direction = match (action, target_position) {
        (_, Some(target)) if target.get().is_sign_positive() && !target.get().is_zero() => {
            Some(Direction::Long)
        }
        (_, Some(target)) if target.get().is_sign_negative() && !target.get().is_zero() => {
            Some(Direction::Short)
        }
        (_, Some(_)) => None,
        (Action::Buy, None) => Some(Direction::Long),
        (Action::Sell, None) => Some(Direction::Short),
        _ => None,
    };
    // A position_percent buy or sell reduces the opposite position; it opens nothing.
    let direction = direction.filter(|_| quantity_type != Some(QuantityType::PositionPercent));
    if let Some(direction) = direction {
        check_levels(
            direction,
            take_profit,
            stop_loss,
            trailing_stop,
            limit_price,
            trigger_price,
            price,
        )?;
    }

    let trade = TradeSpec {
        quantity_type: quantity_type.unwrap_or_default(),
        target_position,
        order_type,
        limit_price,
        time_in_force: time_in_force.unwrap_or_default(),
        cancel_after_secs,
        trigger_price,
        take_profit,
        stop_loss,
        trailing_stop,
        break_even,
        leverage,
        margin_mode,
        max_lag_secs,
    };
    Ok(Sized {
        quantity,
        price,
        trade,
    })
}

/// The quantity, in the units `quantity_type` names, and whether the body may go without one.
fn quantity(
    action: Action,
    text: Option<&str>,
    quantity_type: Option<QuantityType>,
    target_position: Option<SignedQty>,
) -> Result<Option<Qty>, BodyError> {
    let Some(text) = text else {
        if quantity_type.is_some() && action != Action::Cancel {
            return Err(conflict(
                "quantity_type",
                "quantity",
                "quantity_type says what quantity counts, so it needs quantity",
            ));
        }
        return match action {
            Action::Buy | Action::Sell if target_position.is_none() => {
                Err(field("quantity", "is required for buy and sell"))
            }
            _ => Ok(None),
        };
    };
    if action == Action::Cancel {
        return Err(conflict(
            "quantity",
            "action",
            "action cancel cancels the open orders on the symbol and takes no quantity",
        ));
    }
    if target_position.is_some() {
        return Err(conflict(
            "quantity",
            "target_position",
            "give one or the other: target_position sizes each order itself",
        ));
    }
    let kind = quantity_type.unwrap_or_default();
    if action == Action::Close && !matches!(kind, QuantityType::Base | QuantityType::PositionPercent) {
        return Err(conflict(
            "quantity_type",
            "action",
            "close takes a quantity in base units or as position_percent",
        ));
    }
    match kind {
        QuantityType::Base | QuantityType::Usdt => {}
        QuantityType::EquityPercent | QuantityType::RiskPercent | QuantityType::PositionPercent => {
            Percent::parse_share(text).map_err(|e| {
                field(
                    "quantity",
                    format!("{e} (a percent, as quantity_type {kind} says)"),
                )
            })?;
        }
    }
    Qty::parse(text)
        .map(Some)
        .map_err(|e| field("quantity", e.to_string()))
}

/// Take profit, stop loss and a trailing stop's activation must lie on the right side of the
/// entry (when the body gives a price to compare with) and of each other.
fn check_levels(
    direction: Direction,
    take_profit: Option<Level>,
    stop_loss: Option<Level>,
    trailing_stop: Option<TrailingStop>,
    limit_price: Option<Price>,
    trigger_price: Option<Price>,
    price: Option<Price>,
) -> Result<(), BodyError> {
    let long = direction == Direction::Long;
    let side = if long { "a long" } else { "a short" };
    let price_of = |level: Option<Level>| match level {
        Some(Level::Price(p)) => Some(p.get()),
        _ => None,
    };
    let (tp, sl) = (price_of(take_profit), price_of(stop_loss));
    if let (Some(tp), Some(sl)) = (tp, sl)
        && (if long { tp <= sl } else { tp >= sl })
    {
        return Err(conflict(
            "take_profit",
            "stop_loss",
            format!(
                "{side}'s take profit must be {} its stop loss",
                if long { "above" } else { "below" }
            ),
        ));
    }
    // The entry as the body states it: the limit, else the trigger, else the reference price.
    let entry = [
        ("limit_price", limit_price),
        ("trigger_price", trigger_price),
        ("price", price),
    ]
    .into_iter()
    .find_map(|(name, p)| p.map(|p| (name, p.get())));
    let Some((entry_name, entry)) = entry else {
        return Ok(());
    };
    let (above, below) = ("above", "below");
    if let Some(tp) = tp
        && (if long { tp <= entry } else { tp >= entry })
    {
        return Err(conflict(
            "take_profit",
            entry_name,
            format!(
                "{side}'s take profit must be {} the entry ({entry})",
                if long { above } else { below }
            ),
        ));
    }
    if let Some(sl) = sl
        && (if long { sl >= entry } else { sl <= entry })
    {
        return Err(conflict(
            "stop_loss",
            entry_name,
            format!(
                "{side}'s stop loss must be {} the entry ({entry})",
                if long { below } else { above }
            ),
        ));
    }
    if let Some(activation) = trailing_stop.and_then(|t| t.activation_price)
        && (if long {
            activation.get() <= entry
        } else {
            activation.get() >= entry
        })
    {
        return Err(conflict(
            "trailing_stop",
            entry_name,
            format!(
                "{side}'s trailing stop activates {} the entry ({entry})",
                if long { above } else { below }
            ),
        ));
    }
    Ok(())
}
