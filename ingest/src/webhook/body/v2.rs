//! The trading-language fields of a body (docs/api.md#webhook-body-v2) and every rule between two
//! fields: what to trade, how to enter, what protection to keep. Rules about one field's value
//! live in `humbex_shared::domain::trade`; this module decides which fields fit together, and
//! refuses a contradiction with a 400 that names both fields.

use std::str::FromStr;

use humbex_shared::domain::trade::{
    BreakEven, Level, Leverage, MAX_CANCEL_AFTER_SECS, MAX_LAG_SECS, MarginMode, OrderType, Percent,
    QuantityType, SignedQty, TimeInForce, TradeSpec, TrailingStop, parse_offset_percent, parse_seconds,
};
use humbex_shared::domain::{Action, DecimalError, Price, Qty};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{BodyError, WireSignal, check_filled, conflict, decimal_text, field};

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

/// One of a field's spellings (case-insensitive), or None when absent or null.
fn choice<T: FromStr<Err = ()>>(
    raw: Option<&RawValue>,
    name: &'static str,
    names: &[&str],
) -> Result<Option<T>, BodyError> {
    let Some(raw) = raw.filter(|r| r.get() != "null") else {
        return Ok(None);
    };
    let text: String = serde_json::from_str(raw.get())
        .map_err(|_| field(name, format!("must be a string: {}", names.join(", "))))?;
    check_filled(name, &text)?;
    text.parse()
        .map(Some)
        .map_err(|()| field(name, format!("must be one of {}", names.join(", "))))
}

fn price_field(raw: Option<&RawValue>, name: &'static str) -> Result<Option<Price>, BodyError> {
    match decimal_text(raw, name)? {
        Some(text) => Price::parse(&text)
            .map(Some)
            .map_err(|e| field(name, e.to_string())),
        None => Ok(None),
    }
}

fn seconds(raw: Option<&RawValue>, name: &'static str, max: u32) -> Result<Option<u32>, BodyError> {
    match decimal_text(raw, name)? {
        Some(text) => parse_seconds(&text, max).map(Some).map_err(|e| match e {
            DecimalError::NotWhole => {
                field(name, format!("must be a whole number of seconds from 1 to {max}"))
            }
            other => field(name, format!("{other} (seconds, 1 to {max})")),
        }),
        None => Ok(None),
    }
}

/// `{"price": x}` or `{"percent": x}`: one of the two, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireLevel<'a> {
    #[serde(default, borrow)]
    price: Option<&'a RawValue>,
    #[serde(default, borrow)]
    percent: Option<&'a RawValue>,
}

/// A take profit or stop loss: an object, or a bare number or string meaning a price.
fn level(
    raw: Option<&RawValue>,
    name: &'static str,
    percent_rule: fn(&str) -> Result<Percent, DecimalError>,
) -> Result<Option<Level>, BodyError> {
    let Some(raw) = raw.filter(|r| r.get() != "null") else {
        return Ok(None);
    };
    if !raw.get().starts_with('{') {
        return price_field(Some(raw), name).map(|p| p.map(Level::Price));
    }
    let shape = || r#"must be {"price": x}, {"percent": x} or a price"#;
    let wire: WireLevel<'_> = serde_json::from_str(raw.get()).map_err(|_| field(name, shape()))?;
    match (decimal_text(wire.price, name)?, decimal_text(wire.percent, name)?) {
        (Some(text), None) => Price::parse(&text)
            .map(|p| Some(Level::Price(p)))
            .map_err(|e| field(name, format!("price {e}"))),
        (None, Some(text)) => percent_rule(&text)
            .map(|p| Some(Level::Percent(p)))
            .map_err(|e| field(name, format!("percent {e}"))),
        _ => Err(field(name, shape())),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireTrailing<'a> {
    #[serde(default, borrow)]
    distance: Option<&'a RawValue>,
    #[serde(default, borrow)]
    percent: Option<&'a RawValue>,
    #[serde(default, borrow)]
    activation_price: Option<&'a RawValue>,
}

const TRAILING: &str = "trailing_stop";

fn trailing_stop(raw: Option<&RawValue>) -> Result<Option<TrailingStop>, BodyError> {
    let Some(raw) = raw.filter(|r| r.get() != "null") else {
        return Ok(None);
    };
    let shape = || {
        field(
            TRAILING,
            r#"must be {"distance": x} or {"percent": x}, with an optional "activation_price""#,
        )
    };
    if !raw.get().starts_with('{') {
        return Err(shape());
    }
    let wire: WireTrailing<'_> = serde_json::from_str(raw.get()).map_err(|_| shape())?;
    let distance = match (
        decimal_text(wire.distance, TRAILING)?,
        decimal_text(wire.percent, TRAILING)?,
    ) {
        (Some(text), None) => {
            Level::Price(Price::parse(&text).map_err(|e| field(TRAILING, format!("distance {e}")))?)
        }
        (None, Some(text)) => Level::Percent(
            Percent::parse_distance(&text).map_err(|e| field(TRAILING, format!("percent {e}")))?,
        ),
        _ => return Err(shape()),
    };
    let activation_price = match decimal_text(wire.activation_price, TRAILING)? {
        Some(text) => {
            Some(Price::parse(&text).map_err(|e| field(TRAILING, format!("activation_price {e}")))?)
        }
        None => None,
    };
    Ok(Some(TrailingStop {
        distance,
        activation_price,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireBreakEven<'a> {
    #[serde(default, borrow)]
    trigger_percent: Option<&'a RawValue>,
    #[serde(default, borrow)]
    offset_percent: Option<&'a RawValue>,
}

const BREAK_EVEN: &str = "break_even";

fn break_even(raw: Option<&RawValue>) -> Result<Option<BreakEven>, BodyError> {
    let Some(raw) = raw.filter(|r| r.get() != "null") else {
        return Ok(None);
    };
    let shape = || {
        field(
            BREAK_EVEN,
            r#"must be {"trigger_percent": x} with an optional "offset_percent""#,
        )
    };
    if !raw.get().starts_with('{') {
        return Err(shape());
    }
    let wire: WireBreakEven<'_> = serde_json::from_str(raw.get()).map_err(|_| shape())?;
    let Some(trigger) = decimal_text(wire.trigger_percent, BREAK_EVEN)? else {
        return Err(shape());
    };
    let trigger_percent =
        Percent::parse(&trigger).map_err(|e| field(BREAK_EVEN, format!("trigger_percent {e}")))?;
    let offset_percent = match decimal_text(wire.offset_percent, BREAK_EVEN)? {
        Some(text) => {
            parse_offset_percent(&text).map_err(|e| field(BREAK_EVEN, format!("offset_percent {e}")))?
        }
        None => rust_decimal::Decimal::ZERO,
    };
    // The stop moves to entry ± offset once the price is trigger% in favour: an offset at or past
    // the trigger would put the stop beyond the price that armed it, and fire at once.
    if offset_percent >= trigger_percent.get() {
        return Err(field(
            BREAK_EVEN,
            "offset_percent must be below trigger_percent (the stop would lie beyond the price that moves it)",
        ));
    }
    Ok(Some(BreakEven {
        trigger_percent,
        offset_percent,
    }))
}
