//! Positions: the position list and leverage.

use chrono::Utc;
use poem::Response;
use serde_json::{Value, json};

use super::envelope::{bybit_error, ok, read_limit, ten_per_second_limit};
use super::params::{Query, category_is_linear, page, str_field};
use crate::bybit_error::BybitError;
use crate::config::AccountSpec;
use crate::exchange::PaperExchange;

pub(super) fn position_list(exchange: &PaperExchange, spec: &AccountSpec, query: &Query) -> Response {
    if !category_is_linear(query) {
        return bybit_error(
            &BybitError::params("params error: category invalid"),
            Some(read_limit()),
        );
    }
    let symbol = query.get("symbol");
    let state = exchange.lock();
    if let Some(s) = symbol
        && !state.instruments.contains_key(s)
    {
        return bybit_error(
            &BybitError::params(format!("params error: symbol invalid {s}")),
            Some(read_limit()),
        );
    }
    if symbol.is_none() && query.get("settleCoin").is_some_and(|c| c != "USDT") {
        return ok(
            json!({"category": "linear", "list": [], "nextPageCursor": ""}),
            Some(read_limit()),
        );
    }
    let Some(account) = state.accounts.get(&spec.api_key) else {
        return bybit_error(&BybitError::invalid_api_key(), None);
    };
    let list = state.positions_json(account, symbol, Utc::now());
    drop(state);
    let (list, next) = page(list, query, 20, 200);
    ok(
        json!({"category": "linear", "list": list, "nextPageCursor": next}),
        Some(read_limit()),
    )
}

pub(super) fn set_leverage(exchange: &PaperExchange, spec: &AccountSpec, params: &Value) -> Response {
    let limit = Some(ten_per_second_limit());
    if str_field(params, "category").as_deref() != Some("linear") {
        return bybit_error(&BybitError::params("params error: category invalid"), limit);
    }
    let symbol = str_field(params, "symbol").unwrap_or_default();
    let buy = str_field(params, "buyLeverage");
    let sell = str_field(params, "sellLeverage");
    let outcome = exchange.lock().set_leverage(
        &spec.api_key,
        &symbol,
        buy.as_deref(),
        sell.as_deref(),
        Utc::now(),
    );
    match outcome {
        Ok(pushes) => {
            exchange.publish(&spec.api_key, pushes);
            ok(json!({}), limit)
        }
        Err(error) => bybit_error(&error, limit),
    }
}
