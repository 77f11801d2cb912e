//! The strict signal-body parser: raw bytes in, a typed [`ParsedSignal`] or a 400 that names the
//! field out. Quantities and prices never pass through f64: the number's own text is parsed as a
//! decimal. This module owns the wire form and the v1 fields; [`v2`] the trading-language fields
//! and the rules between fields (docs/api.md#webhook-body-v2).

#[cfg(test)]
mod tests;
mod v2;
mod values;

use chrono::{DateTime, TimeZone, Utc};
use humbex_shared::domain::trade::TradeSpec;
use humbex_shared::domain::{Action, Price, Qty, Symbol, SymbolPolicy};
use serde::Deserialize;
use serde_json::value::RawValue;

// A signal's own timestamp obeys the same replay window as a Standard Webhooks signature.
use super::signature::TIMESTAMP_TOLERANCE_SECS;

const MAX_CLIENT_ID_CHARS: usize = 128;
const MAX_COMMENT_CHARS: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSignal<'a> {
    #[serde(default)]
    token: Option<String>,
    action: String,
    symbol: String,
    #[serde(default, borrow)]
    quantity: Option<&'a RawValue>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default, borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(default, borrow)]
    price: Option<&'a RawValue>,
    #[serde(default)]
    comment: Option<String>,
    // The v2 fields (docs/api.md#webhook-body-v2), read by `v2`. Raw, so that each names itself in
    // its error whatever JSON type it holds, and decimals keep their text.
    #[serde(default, borrow)]
    target_position: Option<&'a RawValue>,
    #[serde(default, borrow)]
    quantity_type: Option<&'a RawValue>,
    #[serde(default, borrow)]
    order_type: Option<&'a RawValue>,
    #[serde(default, borrow)]
    limit_price: Option<&'a RawValue>,
    #[serde(default, borrow)]
    time_in_force: Option<&'a RawValue>,
    #[serde(default, borrow)]
    cancel_after_secs: Option<&'a RawValue>,
    #[serde(default, borrow)]
    trigger_price: Option<&'a RawValue>,
    #[serde(default, borrow)]
    take_profit: Option<&'a RawValue>,
    #[serde(default, borrow)]
    stop_loss: Option<&'a RawValue>,
    #[serde(default, borrow)]
    trailing_stop: Option<&'a RawValue>,
    #[serde(default, borrow)]
    break_even: Option<&'a RawValue>,
    #[serde(default, borrow)]
    leverage: Option<&'a RawValue>,
    #[serde(default, borrow)]
    margin_mode: Option<&'a RawValue>,
    #[serde(default, borrow)]
    max_lag_secs: Option<&'a RawValue>,
}

/// A validated signal. The token is only shape-checked later, by the caller; a missing token is
/// an authentication failure (401), not a syntax error.
#[derive(Debug)]
pub struct ParsedSignal {
    pub token: Option<String>,
    pub action: Action,
    pub symbol: Symbol,
    /// None for `close` (the whole position), `cancel`, and with `target_position`. Counted in
    /// `trade.quantity_type` units (coins unless it says otherwise).
    pub quantity: Option<Qty>,
    pub client_id: Option<String>,
    pub signal_time: Option<DateTime<Utc>>,
    pub price: Option<Price>,
    pub comment: Option<String>,
    /// The v2 fields; `TradeSpec::default()` (plain) for a v1 body.
    pub trade: TradeSpec,
}

/// Why a body was refused; every variant becomes a 400 whose message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("body is not valid JSON for a signal: {0}")]
    Json(String),
    #[error("{field}: {problem}")]
    Field { field: &'static str, problem: String },
    #[error("timestamp: {0}")]
    Stale(String),
    /// A field holds a value of the wrong JSON type; the message starts with the field's name.
    #[error("{0}")]
    FieldType(String),
    /// Two fields that do not fit together; the message names both, the offending one first.
    #[error("{field}, {other}: {problem}")]
    Conflict {
        field: &'static str,
        other: &'static str,
        problem: String,
    },
}

impl BodyError {
    pub fn code(&self) -> &'static str {
        match self {
            BodyError::Json(_) | BodyError::FieldType(_) => "invalid_body",
            BodyError::Field { .. } => "invalid_field",
            BodyError::Stale(_) => "stale_signal",
            BodyError::Conflict { .. } => "conflicting_fields",
        }
    }
}

fn field(field: &'static str, problem: impl Into<String>) -> BodyError {
    BodyError::Field {
        field,
        problem: problem.into(),
    }
}

fn conflict(field: &'static str, other: &'static str, problem: impl Into<String>) -> BodyError {
    BodyError::Conflict {
        field,
        other,
        problem: problem.into(),
    }
}

/// TradingView leaves a placeholder it cannot fill as written (a strategy placeholder in an
/// indicator's alert, a typo), and writes `NaN` for a series that is `na`: both are refused with
/// the field named and the reason, not as a malformed number.
fn check_filled(name: &'static str, text: &str) -> Result<(), BodyError> {
    if text.contains("{{") {
        return Err(field(
            name,
            format!(
                "holds an unresolved TradingView placeholder ({}); TradingView fills only the placeholders it knows, and {{{{strategy.…}}}} only in a strategy's alert",
                text.chars().take(60).collect::<String>()
            ),
        ));
    }
    if text.eq_ignore_ascii_case("nan") {
        return Err(field(
            name,
            "is NaN: the script's value was na when the alert fired",
        ));
    }
    Ok(())
}

/// Parse and validate a signal body against the allowed symbols, at time `now`.
pub fn parse_signal(
    bytes: &[u8],
    allowed_symbols: &SymbolPolicy,
    now: DateTime<Utc>,
) -> Result<ParsedSignal, BodyError> {
    let wire = deserialize_wire(bytes)?;

    for (name, value) in [
        ("token", wire.token.as_ref()),
        ("action", Some(&wire.action)),
        ("symbol", Some(&wire.symbol)),
        ("id", wire.id.as_ref()),
        ("comment", wire.comment.as_ref()),
    ] {
        if value.is_some_and(|v| v.contains('\0')) {
            return Err(field(name, "must not contain NUL characters"));
        }
    }

    check_filled("action", &wire.action)?;
    let action =
        Action::parse(&wire.action).ok_or_else(|| field("action", "must be buy, sell, close or cancel"))?;
    check_filled("symbol", &wire.symbol)?;
    let symbol = Symbol::parse(&wire.symbol).map_err(|e| field("symbol", e.to_string()))?;
    allowed_symbols
        .check(&symbol)
        .map_err(|problem| field("symbol", problem))?;

    let v2::Sized {
        quantity,
        price,
        trade,
    } = v2::parse(&wire, action)?;

    let client_id = match wire.id {
        None => None,
        Some(id) => {
            let count = id.chars().count();
            if count == 0 || count > MAX_CLIENT_ID_CHARS {
                return Err(field(
                    "id",
                    format!("must be 1 to {MAX_CLIENT_ID_CHARS} characters"),
                ));
            }
            if id.chars().any(char::is_control) {
                return Err(field("id", "must not contain control characters"));
            }
            Some(id)
        }
    };
    let comment = match wire.comment {
        Some(c) if c.chars().count() > MAX_COMMENT_CHARS => {
            return Err(field(
                "comment",
                format!("must be at most {MAX_COMMENT_CHARS} characters"),
            ));
        }
        other => other,
    };

    let signal_time = parse_timestamp(wire.timestamp)?;
    if let Some(at) = signal_time {
        let skew = (now - at).num_seconds();
        if skew > TIMESTAMP_TOLERANCE_SECS {
            return Err(BodyError::Stale(format!(
                "{at} is {skew} s old; signals older than 5 minutes are refused as replays"
            )));
        }
        if skew < -TIMESTAMP_TOLERANCE_SECS {
            return Err(BodyError::Stale(format!(
                "{at} is {} s in the future; check the sender's clock",
                -skew
            )));
        }
    }

    Ok(ParsedSignal {
        token: wire.token,
        action,
        symbol,
        quantity,
        client_id,
        signal_time,
        price,
        comment,
        trade,
    })
}

/// The wire form of a body. A value of the wrong type for its field is answered with the field's
/// name first (`action: invalid type: integer `1`, expected a string`), like every other refusal;
/// syntax errors, unknown and duplicate fields keep serde_json's message, which names them.
fn deserialize_wire(bytes: &[u8]) -> Result<WireSignal<'_>, BodyError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let wire: WireSignal<'_> = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        // Only a top-level key is a field of the signal (a sequence would be read positionally).
        let field = match e.path().iter().collect::<Vec<_>>().as_slice() {
            [serde_path_to_error::Segment::Map { key }] => Some(key.clone()),
            _ => None,
        };
        let inner = e.into_inner();
        let located = format!(" at line {} column {}", inner.line(), inner.column());
        let message = inner.to_string();
        let message = message.strip_suffix(&located).unwrap_or(&message);
        match field {
            Some(field)
                if inner.classify() == serde_json::error::Category::Data
                    && message.starts_with("invalid ") =>
            {
                BodyError::FieldType(format!("{field}: {message}"))
            }
            _ => BodyError::Json(inner.to_string()),
        }
    })?;
    de.end().map_err(|e| BodyError::Json(e.to_string()))?;
    Ok(wire)
}

/// The decimal text of a number or string field; `null` and absence are both None.
fn decimal_text(raw: Option<&RawValue>, name: &'static str) -> Result<Option<String>, BodyError> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get();
    if text == "null" {
        return Ok(None);
    }
    if text.starts_with('"') {
        let s: String = serde_json::from_str(text).map_err(|_| field(name, "is not a valid string"))?;
        check_filled(name, &s)?;
        return Ok(Some(s));
    }
    if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Ok(Some(text.to_owned()));
    }
    Err(field(name, "must be a decimal number or a string holding one"))
}

/// RFC 3339 text, or epoch seconds or milliseconds (number or digit string).
fn parse_timestamp(raw: Option<&RawValue>) -> Result<Option<DateTime<Utc>>, BodyError> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get();
    if text == "null" {
        return Ok(None);
    }
    let owned;
    let value = if text.starts_with('"') {
        owned =
            serde_json::from_str::<String>(text).map_err(|_| field("timestamp", "is not a valid string"))?;
        check_filled("timestamp", &owned)?;
        owned.as_str()
    } else {
        text
    };
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = value
            .parse()
            .map_err(|_| field("timestamp", "epoch number is out of range"))?;
        // Below 10^11 it can only be seconds (that is the year 5138); above, milliseconds.
        let at = if n < 100_000_000_000 {
            Utc.timestamp_opt(n, 0).single()
        } else {
            Utc.timestamp_millis_opt(n).single()
        };
        return at
            .map(Some)
            .ok_or_else(|| field("timestamp", "epoch number is out of range"));
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| {
            field(
                "timestamp",
                "must be RFC 3339 (2026-01-31T12:00:00Z) or epoch seconds or milliseconds",
            )
        })
}
