//! Tolerant field decoders for Bybit's JSON: numbers arrive as strings or numbers, "not set" as
//! `""`, `"0"` or missing, and decimals must never pass through a float.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::model::Side;

fn decimal_from_value<E: serde::de::Error>(value: &Value) -> Result<Option<Decimal>, E> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => Decimal::from_str(s.trim())
            .or_else(|_| Decimal::from_scientific(s.trim()))
            .map(Some)
            .map_err(|e| E::custom(format!("bad decimal {s:?}: {e}"))),
        // The number's own text, so `0.1` stays exactly 0.1.
        Value::Number(n) => Decimal::from_str(&n.to_string())
            .or_else(|_| Decimal::from_scientific(&n.to_string()))
            .map(Some)
            .map_err(|e| E::custom(format!("bad decimal {n}: {e}"))),
        other => Err(E::custom(format!("expected a decimal, got {other}"))),
    }
}

pub fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    let value = Value::deserialize(d)?;
    decimal_from_value(&value)?.ok_or_else(|| D::Error::custom("missing decimal"))
}

pub fn opt_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    decimal_from_value(&Value::deserialize(d)?)
}

/// A price where Bybit writes "not set" as `""`, `"0"` or `"0.000"`: all of those are `None`.
pub fn opt_price<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    Ok(decimal_from_value::<D::Error>(&Value::deserialize(d)?)?.filter(|p| !p.is_zero()))
}

fn int_from_value<E: serde::de::Error>(value: &Value) -> Result<Option<i64>, E> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| E::custom(format!("bad integer {s:?}: {e}"))),
        Value::Number(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| E::custom(format!("bad integer {n}"))),
        other => Err(E::custom(format!("expected an integer, got {other}"))),
    }
}

pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    int_from_value(&Value::deserialize(d)?)?.ok_or_else(|| D::Error::custom("missing integer"))
}

pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    int_from_value(&Value::deserialize(d)?)
}

/// `0`/`1` (number or string) or a JSON boolean.
pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        other => match int_from_value::<D::Error>(&other)? {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(D::Error::custom(format!("expected 0 or 1, got {other}"))),
        },
    }
}

/// `""` means flat.
pub fn opt_side<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Side>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() || s == "None" => Ok(None),
        other => Side::deserialize(other).map(Some).map_err(D::Error::custom),
    }
}

/// A string that some documents send as a number.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(D::Error::custom(format!("expected a string, got {other}"))),
    }
}

/// `{"USDT": "0.011"}`; `""` or `null` when Bybit has nothing to report.
pub fn fee_detail<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Decimal>, D::Error> {
    match Value::deserialize(d)? {
        Value::Object(map) => {
            let mut fees = BTreeMap::new();
            for (coin, amount) in map {
                if let Some(amount) = decimal_from_value::<D::Error>(&amount)? {
                    fees.insert(coin, amount);
                }
            }
            Ok(fees)
        }
        Value::Null | Value::String(_) => Ok(BTreeMap::new()),
        other => Err(D::Error::custom(format!("expected a fee map, got {other}"))),
    }
}
