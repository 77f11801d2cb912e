//! Public market data: server time, instruments-info and tickers (linear perpetuals only).

use chrono::Utc;
use poem::Response;
use serde_json::{Value, json};

use super::envelope::{bybit_error, ok};
use super::params::{Query, page};
use crate::bybit_error::BybitError;
use crate::exchange::PaperExchange;

pub(super) fn server_time() -> Response {
    let now = Utc::now();
    ok(
        json!({
            "timeSecond": now.timestamp().to_string(),
            "timeNano": now.timestamp_nanos_opt().unwrap_or_default().to_string(),
        }),
        None,
    )
}

pub(super) fn instruments_info(exchange: &PaperExchange, query: &Query) -> Response {
    let category = query.get("category").unwrap_or("");
    if !matches!(category, "linear" | "spot" | "inverse" | "option") {
        return bybit_error(&BybitError::params("params error: category invalid"), None);
    }
    // Only linear perpetuals in Trading status are simulated; everything else is an empty page.
    let list: Vec<Value> = if category == "linear" && query.get("status").is_none_or(|s| s == "Trading") {
        let state = exchange.lock();
        state
            .instruments
            .values()
            .filter(|i| query.get("symbol").is_none_or(|s| s == i.symbol))
            .filter(|i| query.get("baseCoin").is_none_or(|c| c == i.base_coin))
            .map(|i| i.to_bybit_json())
            .collect()
    } else {
        Vec::new()
    };
    // Bybit pages at 500 by default (limit up to 1000) with an opaque cursor.
    let (list, next) = page(list, query, 500, 1000);
    ok(
        json!({"category": category, "list": list, "nextPageCursor": next}),
        None,
    )
}

pub(super) fn tickers(exchange: &PaperExchange, query: &Query) -> Response {
    let category = query.get("category").unwrap_or("");
    if !matches!(category, "linear" | "spot" | "inverse" | "option") {
        return bybit_error(&BybitError::params("params error: category invalid"), None);
    }
    let list: Vec<Value> = if category == "linear" {
        let state = exchange.lock();
        if let Some(symbol) = query.get("symbol")
            && !state.instruments.contains_key(symbol)
        {
            return bybit_error(
                &BybitError::params(format!("params error: symbol invalid {symbol}")),
                None,
            );
        }
        state
            .instruments
            .values()
            .filter(|i| query.get("symbol").is_none_or(|s| s == i.symbol))
            .map(|i| i.ticker_json())
            .collect()
    } else {
        Vec::new()
    };
    ok(json!({"category": category, "list": list}), None)
}
