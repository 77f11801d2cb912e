//! Positions: the position list, leverage, trading-stop (TP/SL/trailing) and position mode.

use chrono::Utc;
use poem::Response;
use serde_json::{Value, json};

use super::envelope::{bybit_error, ok, read_limit, ten_per_second_limit};
use super::params::{Query, category_is_linear, int_field, page, str_field};
use crate::bybit_error::BybitError;
use crate::config::AccountSpec;
use crate::engine::TradingStopRequest;
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

pub(super) fn trading_stop(exchange: &PaperExchange, spec: &AccountSpec, params: &Value) -> Response {
    let limit = Some(ten_per_second_limit());
    if str_field(params, "category").as_deref() != Some("linear") {
        return bybit_error(&BybitError::params("params error: category invalid"), limit);
    }
    let position_idx = match int_field(params, "positionIdx") {
        Ok(idx) => idx,
        Err(error) => return bybit_error(&error, limit),
    };
    let request = TradingStopRequest {
        symbol: str_field(params, "symbol").unwrap_or_default(),
        position_idx,
        tpsl_mode: str_field(params, "tpslMode"),
        take_profit: str_field(params, "takeProfit"),
        stop_loss: str_field(params, "stopLoss"),
        trailing_stop: str_field(params, "trailingStop"),
        active_price: str_field(params, "activePrice"),
    };
    let outcome = exchange
        .lock_for_account(&spec.api_key)
        .trading_stop(&spec.api_key, &request, Utc::now());
    match outcome {
        Ok(pushes) => {
            exchange.publish(&spec.api_key, pushes);
            ok(json!({}), limit)
        }
        Err(error) => bybit_error(&error, limit),
    }
}

pub(super) fn switch_mode(exchange: &PaperExchange, spec: &AccountSpec, params: &Value) -> Response {
    let limit = Some(ten_per_second_limit());
    if str_field(params, "category").as_deref() != Some("linear") {
        return bybit_error(&BybitError::params("params error: category invalid"), limit);
    }
    if str_field(params, "symbol").is_none() && str_field(params, "coin").is_none() {
        return bybit_error(
            &BybitError::params("params error: symbol or coin is required"),
            limit,
        );
    }
    let outcome =
        int_field(params, "mode").and_then(|mode| exchange.lock().switch_position_mode(&spec.api_key, mode));
    match outcome {
        Ok(()) => ok(json!({}), limit),
        Err(error) => bybit_error(&error, limit),
    }
}
