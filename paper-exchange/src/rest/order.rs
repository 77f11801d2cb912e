//! Orders and fills: create (with the rate limit, permission check and order-create faults), cancel,
//! the open and historical order lists, and the execution list.

use chrono::Utc;
use poem::Response;
use serde_json::{Value, json};

use super::envelope::{bybit_error, now_ms, ok, plain_status, read_limit, ten_per_second_limit};
use super::params::{Query, bool_field, category_is_linear, int_field, page, str_field};
use crate::bybit_error::BybitError;
use crate::config::AccountSpec;
use crate::engine::{OrderQuery, OrderRequest, RateLimitStatus};
use crate::exchange::PaperExchange;
use crate::faults::OrderCreateFault;

fn order_request(params: &Value) -> Result<OrderRequest, BybitError> {
    let position_idx = int_field(params, "positionIdx")?;
    Ok(OrderRequest {
        category: str_field(params, "category"),
        symbol: str_field(params, "symbol"),
        side: str_field(params, "side"),
        order_type: str_field(params, "orderType"),
        qty: str_field(params, "qty"),
        price: str_field(params, "price"),
        time_in_force: str_field(params, "timeInForce"),
        order_link_id: str_field(params, "orderLinkId"),
        position_idx,
        reduce_only: bool_field(params, "reduceOnly"),
        close_on_trigger: bool_field(params, "closeOnTrigger"),
        trigger_price: str_field(params, "triggerPrice"),
        trigger_direction: int_field(params, "triggerDirection")?,
        trigger_by: str_field(params, "triggerBy"),
        take_profit: str_field(params, "takeProfit"),
        stop_loss: str_field(params, "stopLoss"),
        tpsl_mode: str_field(params, "tpslMode"),
    })
}

pub(super) async fn order_create(exchange: &PaperExchange, spec: &AccountSpec, params: &Value) -> Response {
    let limit = {
        let mut state = exchange.lock();
        match state.accounts.get_mut(&spec.api_key) {
            Some(account) => account.check_order_create_rate(now_ms()),
            None => return bybit_error(&BybitError::invalid_api_key(), None),
        }
    };
    if !limit.allowed {
        return bybit_error(&BybitError::new(10006, "Too many visits!"), Some(limit));
    }
    if !spec.can_trade() {
        return bybit_error(
            &BybitError::new(10005, "Permission denied, please check your API key permissions."),
            Some(limit),
        );
    }
    let fault = exchange.faults.order_create(&spec.api_key);
    if fault == Some(OrderCreateFault::RateLimited) {
        let burst = RateLimitStatus {
            allowed: false,
            limit: limit.limit,
            remaining: 0,
            reset_at_ms: now_ms() + 1000,
        };
        return bybit_error(&BybitError::new(10006, "Too many visits!"), Some(burst));
    }
    // A failure fault with after_placing shows its failure only after the order really exists: the
    // ambiguous case a client must resolve by querying its orderLinkId.
    let placed = match &fault {
        None => Some(place_order(exchange, spec, params)),
        Some(f) if f.after_placing() => Some(place_order(exchange, spec, params)),
        Some(_) => None,
    };
    match (fault, placed) {
        (None, Some(Ok(result))) => ok(result, Some(limit)),
        (None, Some(Err(error))) => bybit_error(&error, Some(limit)),
        (Some(OrderCreateFault::HttpError { status, .. }), _) => {
            plain_status(status, "upstream error (paper fault)")
        }
        (Some(OrderCreateFault::Timeout { hold, .. }), _) => {
            tokio::time::sleep(hold).await;
            plain_status(504, "Gateway Timeout (paper fault)")
        }
        (Some(OrderCreateFault::RetCode { code, msg, .. }), _) => {
            bybit_error(&BybitError::new(code, msg), Some(limit))
        }
        (Some(OrderCreateFault::RateLimited), _) | (None, None) => {
            unreachable!("rate-limit bursts are answered above and no fault always places")
        }
    }
}

fn place_order(exchange: &PaperExchange, spec: &AccountSpec, params: &Value) -> Result<Value, BybitError> {
    let request = order_request(params)?;
    let (order, pushes) =
        exchange
            .lock_for_account(&spec.api_key)
            .create_order(&spec.api_key, &request, Utc::now())?;
    exchange.publish(&spec.api_key, pushes);
    Ok(json!({"orderId": order.order_id, "orderLinkId": order.order_link_id}))
}

pub(super) fn order_cancel(exchange: &PaperExchange, spec: &AccountSpec, params: &Value) -> Response {
    let limit = Some(ten_per_second_limit());
    if str_field(params, "category").as_deref() != Some("linear") {
        return bybit_error(&BybitError::params("params error: category invalid"), limit);
    }
    let symbol = str_field(params, "symbol").unwrap_or_default();
    let order_id = str_field(params, "orderId");
    let order_link_id = str_field(params, "orderLinkId");
    let outcome = exchange.lock_for_account(&spec.api_key).cancel_order(
        &spec.api_key,
        &symbol,
        order_id.as_deref(),
        order_link_id.as_deref(),
        Utc::now(),
    );
    match outcome {
        Ok((order, pushes)) => {
            exchange.publish(&spec.api_key, pushes);
            ok(
                json!({"orderId": order.order_id, "orderLinkId": order.order_link_id}),
                limit,
            )
        }
        Err(error) => bybit_error(&error, limit),
    }
}

/// `/v5/order/cancel-all` by symbol (Bybit also takes baseCoin/settleCoin; the paper exchange only
/// the symbol, which is what HUMBEX sends).
pub(super) fn order_cancel_all(exchange: &PaperExchange, spec: &AccountSpec, params: &Value) -> Response {
    let limit = Some(ten_per_second_limit());
    if str_field(params, "category").as_deref() != Some("linear") {
        return bybit_error(&BybitError::params("params error: category invalid"), limit);
    }
    let Some(symbol) = str_field(params, "symbol").filter(|s| !s.is_empty()) else {
        return bybit_error(&BybitError::params("params error: symbol is required"), limit);
    };
    let outcome = exchange
        .lock_for_account(&spec.api_key)
        .cancel_all(&spec.api_key, &symbol, Utc::now());
    match outcome {
        Ok((orders, pushes)) => {
            exchange.publish(&spec.api_key, pushes);
            let list: Vec<Value> = orders
                .iter()
                .map(|o| json!({"orderId": o.order_id, "orderLinkId": o.order_link_id}))
                .collect();
            ok(json!({"list": list, "success": "1"}), limit)
        }
        Err(error) => bybit_error(&error, limit),
    }
}

pub(super) fn order_list(
    exchange: &PaperExchange,
    spec: &AccountSpec,
    query: &Query,
    realtime: bool,
) -> Response {
    if !category_is_linear(query) {
        return bybit_error(
            &BybitError::params("params error: category invalid"),
            Some(read_limit()),
        );
    }
    let by_id = query.get("orderId").is_some() || query.get("orderLinkId").is_some();
    let filter = OrderQuery {
        symbol: query.get("symbol").map(str::to_string),
        order_id: query.get("orderId").map(str::to_string),
        order_link_id: query.get("orderLinkId").map(str::to_string),
        order_status: query.get("orderStatus").map(str::to_string),
        open_only: realtime && !by_id && query.get("openOnly").unwrap_or("0") == "0",
        closed_only: realtime && !by_id && query.get("openOnly") == Some("1"),
    };
    let state = exchange.lock();
    let Some(account) = state.accounts.get(&spec.api_key) else {
        return bybit_error(&BybitError::invalid_api_key(), None);
    };
    let list: Vec<Value> = state
        .query_orders(account, &filter)
        .map(|o| o.to_bybit_json(&state.instruments[&o.symbol]))
        .collect();
    drop(state);
    let (list, next) = page(list, query, 20, 50);
    ok(
        json!({"category": "linear", "list": list, "nextPageCursor": next}),
        Some(read_limit()),
    )
}

pub(super) fn execution_list(exchange: &PaperExchange, spec: &AccountSpec, query: &Query) -> Response {
    if !category_is_linear(query) {
        return bybit_error(
            &BybitError::params("params error: category invalid"),
            Some(read_limit()),
        );
    }
    if query.get("execType").is_some_and(|t| t != "Trade") {
        return ok(
            json!({"category": "linear", "list": [], "nextPageCursor": ""}),
            Some(read_limit()),
        );
    }
    let start = query.get("startTime").and_then(|t| t.parse::<i64>().ok());
    let end = query.get("endTime").and_then(|t| t.parse::<i64>().ok());
    let state = exchange.lock();
    let Some(account) = state.accounts.get(&spec.api_key) else {
        return bybit_error(&BybitError::invalid_api_key(), None);
    };
    let list: Vec<Value> = account
        .executions
        .iter()
        .rev()
        .filter(|e| query.get("symbol").is_none_or(|s| s == e.symbol))
        .filter(|e| query.get("orderId").is_none_or(|s| s == e.order_id))
        .filter(|e| query.get("orderLinkId").is_none_or(|s| s == e.order_link_id))
        .filter(|e| start.is_none_or(|t| e.exec_time.timestamp_millis() >= t))
        .filter(|e| end.is_none_or(|t| e.exec_time.timestamp_millis() <= t))
        .map(|e| e.to_bybit_json(&state.instruments[&e.symbol]))
        .collect();
    drop(state);
    let (list, next) = page(list, query, 50, 100);
    ok(
        json!({"category": "linear", "list": list, "nextPageCursor": next}),
        Some(read_limit()),
    )
}
