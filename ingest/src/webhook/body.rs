//! The strict signal-body parser: raw bytes in, a typed [`ParsedSignal`] or a 400 that names the
//! field out. Quantities and prices never pass through f64: the number's own text is parsed as a
//! decimal.

use std::collections::HashSet;

use chrono::{DateTime, TimeZone, Utc};
use humbex_shared::domain::{Action, Price, Qty, Symbol};
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
}

/// A validated signal. The token is only shape-checked later, by the caller; a missing token is
/// an authentication failure (401), not a syntax error.
#[derive(Debug)]
pub struct ParsedSignal {
    pub token: Option<String>,
    pub action: Action,
    pub symbol: Symbol,
    /// None only for `close` (the whole position).
    pub quantity: Option<Qty>,
    pub client_id: Option<String>,
    pub signal_time: Option<DateTime<Utc>>,
    pub price: Option<Price>,
    pub comment: Option<String>,
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
}

impl BodyError {
    pub fn code(&self) -> &'static str {
        match self {
            BodyError::Json(_) | BodyError::FieldType(_) => "invalid_body",
            BodyError::Field { .. } => "invalid_field",
            BodyError::Stale(_) => "stale_signal",
        }
    }
}

fn field(field: &'static str, problem: impl Into<String>) -> BodyError {
    BodyError::Field {
        field,
        problem: problem.into(),
    }
}

/// Parse and validate a signal body against the allowed symbols, at time `now`.
pub fn parse_signal(
    bytes: &[u8],
    allowed_symbols: &HashSet<Symbol>,
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

    let action = Action::parse(&wire.action).ok_or_else(|| field("action", "must be buy, sell or close"))?;
    let symbol = Symbol::parse(&wire.symbol).map_err(|e| field("symbol", e.to_string()))?;
    if !allowed_symbols.contains(&symbol) {
        let mut allowed: Vec<_> = allowed_symbols.iter().map(Symbol::as_str).collect();
        allowed.sort_unstable();
        return Err(field(
            "symbol",
            format!("{symbol} is not traded here (allowed: {})", allowed.join(", ")),
        ));
    }

    let quantity = match decimal_text(wire.quantity, "quantity")? {
        Some(text) => Some(Qty::parse(&text).map_err(|e| field("quantity", e.to_string()))?),
        None if action == Action::Close => None,
        None => return Err(field("quantity", "is required for buy and sell")),
    };
    let price = match decimal_text(wire.price, "price")? {
        Some(text) => Some(Price::parse(&text).map_err(|e| field("price", e.to_string()))?),
        None => None,
    };

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

#[cfg(test)]
mod tests {
    use super::*;

    fn symbols() -> HashSet<Symbol> {
        ["AVAXUSDT", "BTCUSDT"]
            .iter()
            .map(|s| Symbol::parse(s).unwrap())
            .collect()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }

    fn parse(body: &str) -> Result<ParsedSignal, BodyError> {
        parse_signal(body.as_bytes(), &symbols(), now())
    }

    fn field_of(body: &str) -> &'static str {
        match parse(body) {
            Err(BodyError::Field { field, .. }) => field,
            other => panic!("{body}: expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn accepts_the_original_contract_and_tradingview_spellings() {
        let s = parse(r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1.0}"#).unwrap();
        assert_eq!(s.quantity.unwrap().to_string(), "1");
        let s = parse(
            r#"{"token":"t","action":"SELL","symbol":"BYBIT:AVAXUSDT.P","quantity":"0.25","id":"a-1",
                "timestamp":"2026-11-28T11:59:30Z","price":"31.4","comment":"x"}"#,
        )
        .unwrap();
        assert_eq!(s.action, Action::Sell);
        assert_eq!(s.symbol.as_str(), "AVAXUSDT");
        assert_eq!(s.client_id.as_deref(), Some("a-1"));
        assert_eq!(s.price.unwrap().get().to_string(), "31.4");
        let s = parse(r#"{"token":"t","action":"close","symbol":"AVAXUSDT"}"#).unwrap();
        assert!(s.quantity.is_none());
        let s = parse(
            r#"{"token":"t","action":"close","symbol":"AVAXUSDT","quantity":null,"timestamp":1795867190}"#,
        )
        .unwrap();
        assert!(s.signal_time.is_some());
        let s = parse(r#"{"token":"t","action":"close","symbol":"AVAXUSDT","timestamp":"1795867190000"}"#)
            .unwrap();
        assert_eq!(s.signal_time.unwrap().timestamp(), 1_795_867_190);
    }

    #[test]
    fn never_loses_precision_through_floats() {
        let s = parse(r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":0.10000001}"#).unwrap();
        assert_eq!(s.quantity.unwrap().to_string(), "0.10000001");
        assert_eq!(
            field_of(
                r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":123456789012345678901234567890}"#
            ),
            "quantity"
        );
        assert_eq!(
            field_of(
                r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":"0.1234567890123456789012345678901"}"#
            ),
            "quantity"
        );
    }

    #[test]
    fn field_errors_name_the_field() {
        let cases = [
            (
                r#"{"token":"t","action":"long","symbol":"AVAXUSDT","quantity":1}"#,
                "action",
            ),
            (
                r#"{"token":"t","action":"buy","symbol":"ETHUSDT","quantity":1}"#,
                "symbol",
            ),
            (
                r#"{"token":"t","action":"buy","symbol":"BTC\u0000USDT","quantity":1}"#,
                "symbol",
            ),
            (
                r#"{"token":"t","action":"buy","symbol":"\u202eAVAXUSDT","quantity":1}"#,
                "symbol",
            ),
            (
                r#"{"token":"t","action":"buy","symbol":"BTCUSDТ","quantity":1}"#,
                "symbol",
            ),
            (r#"{"token":"t","action":"buy","symbol":"AVAXUSDT"}"#, "quantity"),
            (
                r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":0}"#,
                "quantity",
            ),
            (
                r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":-1}"#,
                "quantity",
            ),
            (
                r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":-0.0}"#,
                "quantity",
            ),
            (
                r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":"-1"}"#,
                "quantity",
            ),
            (
                r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":"1e3"}"#,
                "quantity",
            ),
            (
                r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1e3}"#,
                "quantity",
            ),
            (
                r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1e400}"#,
                "quantity",
            ),
            (
                r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":true}"#,
                "quantity",
            ),
            (
                r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":"79228162514264337593543950336"}"#,
                "quantity",
            ),
            (
                r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"price":"0"}"#,
                "price",
            ),
            (
                r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"id":""}"#,
                "id",
            ),
            (
                r#"{"token":"t\u0000","action":"buy","symbol":"AVAXUSDT","quantity":1}"#,
                "token",
            ),
            (
                r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"comment":"a\u0000"}"#,
                "comment",
            ),
            (
                r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"timestamp":"yesterday"}"#,
                "timestamp",
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(field_of(body), expected, "{body}");
        }
    }

    #[test]
    fn malformed_json_is_refused() {
        let nested = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for body in [
            "",
            "not json",
            "\u{feff}{}",
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantiy":1}"#,
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"quantity":1000}"#,
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":NaN}"#,
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":Infinity}"#,
            r#"{"token":"\ud800","action":"buy","symbol":"AVAXUSDT","quantity":1}"#,
            r#"["token"]"#,
            nested.as_str(),
        ] {
            assert!(
                matches!(parse(body), Err(BodyError::Json(_))),
                "{body:?} gave {:?}",
                parse(body)
            );
        }
        let err = parse(r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantiy":1}"#).unwrap_err();
        assert!(err.to_string().contains("quantiy"), "{err}");
        let err = parse(r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"quantity":1000}"#)
            .unwrap_err();
        assert!(err.to_string().contains("duplicate field"), "{err}");
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_field() {
        for (body, message) in [
            (
                r#"{"token":"t","action":1,"symbol":"AVAXUSDT","quantity":1}"#,
                "action: invalid type: integer `1`, expected a string",
            ),
            (
                r#"{"token":1,"action":"buy","symbol":"AVAXUSDT","quantity":1}"#,
                "token: invalid type: integer `1`, expected a string",
            ),
            (
                r#"{"token":"t","action":"buy","symbol":["AVAXUSDT"],"quantity":1}"#,
                "symbol: invalid type: sequence, expected a string",
            ),
            (
                r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"id":7}"#,
                "id: invalid type: integer `7`, expected a string",
            ),
            (
                r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"comment":{}}"#,
                "comment: invalid type: map, expected a string",
            ),
        ] {
            let err = parse(body).unwrap_err();
            assert_eq!(err.to_string(), message, "{body}");
            assert_eq!(err.code(), "invalid_body", "{body}");
        }
        // A body that is not an object names no field.
        assert!(matches!(parse(r#"["token"]"#), Err(BodyError::Json(_))));
    }

    #[test]
    fn stale_and_future_timestamps_are_replays() {
        let body =
            |ts: &str| format!(r#"{{"token":"t","action":"close","symbol":"AVAXUSDT","timestamp":"{ts}"}}"#);
        assert!(parse(&body("2026-11-28T11:55:01Z")).is_ok());
        assert!(parse(&body("2026-11-28T12:04:59Z")).is_ok());
        assert!(matches!(
            parse(&body("2026-11-28T11:54:59Z")),
            Err(BodyError::Stale(_))
        ));
        assert!(matches!(
            parse(&body("2026-11-28T12:05:01Z")),
            Err(BodyError::Stale(_))
        ));
        assert!(matches!(parse(&body("1")), Err(BodyError::Stale(_))));
        assert!(matches!(
            parse(&body("99999999999999999999999")),
            Err(BodyError::Field {
                field: "timestamp",
                ..
            })
        ));
    }
}
