//! Reading one v2 field's value from the body: a name from a fixed set, a price, whole seconds,
//! and the object shapes of `take_profit`/`stop_loss`, `trailing_stop` and `break_even`. The rule
//! for each value is the domain's (`humbex_shared::domain::trade`); this module maps the wire
//! shapes onto it and names the field in every error.

use std::str::FromStr;

use humbex_shared::domain::trade::{
    BreakEven, Level, Percent, TrailingStop, parse_offset_percent, parse_seconds,
};
use humbex_shared::domain::{DecimalError, Price};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{BodyError, check_filled, decimal_text, field};

/// One of a field's spellings (case-insensitive), or None when absent or null.
pub(super) fn choice<T: FromStr<Err = ()>>(
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

pub(super) fn price_field(raw: Option<&RawValue>, name: &'static str) -> Result<Option<Price>, BodyError> {
    match decimal_text(raw, name)? {
        Some(text) => Price::parse(&text)
            .map(Some)
            .map_err(|e| field(name, e.to_string())),
        None => Ok(None),
    }
}

pub(super) fn seconds(
    raw: Option<&RawValue>,
    name: &'static str,
    max: u32,
) -> Result<Option<u32>, BodyError> {
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
pub(super) fn level(
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

pub(super) fn trailing_stop(raw: Option<&RawValue>) -> Result<Option<TrailingStop>, BodyError> {
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

pub(super) fn break_even(raw: Option<&RawValue>) -> Result<Option<BreakEven>, BodyError> {
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
