//! Request parameters: the query string (percent-decoded, in the order sent), loosely typed JSON body
//! fields as Bybit accepts them, and cursor pagination.

use serde_json::Value;

/// Query parameters in the order sent, percent-decoded.
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    pub(super) fn parse(raw: &str) -> Query {
        Query(
            raw.split('&')
                .filter(|s| !s.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn category_is_linear(query: &Query) -> bool {
    query.get("category") == Some("linear")
}

pub(super) fn str_field(params: &Value, key: &str) -> Option<String> {
    match params.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An integer field sent as a JSON number or a numeric string (pybit and ccxt differ).
pub(super) fn int_field(params: &Value, key: &str) -> Result<Option<i64>, crate::bybit_error::BybitError> {
    let invalid = || crate::bybit_error::BybitError::params(format!("params error: {key} invalid"));
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(invalid),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| invalid()),
        Some(_) => Err(invalid()),
    }
}

pub(super) fn bool_field(params: &Value, key: &str) -> bool {
    match params.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Cursor = how many items earlier pages held; Bybit's cursors are opaque, so any string will do.
pub(super) fn page<T>(
    items: Vec<T>,
    query: &Query,
    default_limit: usize,
    max_limit: usize,
) -> (Vec<T>, String) {
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(default_limit)
        .clamp(1, max_limit);
    let offset = query
        .get("cursor")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(offset).take(limit).collect();
    let next = if offset + page.len() < total {
        (offset + page.len()).to_string()
    } else {
        String::new()
    };
    (page, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%3Db%26c"), "a=b&c");
        assert_eq!(percent_decode("x+y"), "x y");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        let q = Query::parse("symbol=AVAXUSDT&category=linear&cursor=");
        assert_eq!(q.get("symbol"), Some("AVAXUSDT"));
        assert_eq!(q.get("cursor"), None);
    }
}
