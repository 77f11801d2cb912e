//! Bybit V5 REST: routing of `/v5/...`, the X-BAPI-* authentication, the response envelope with its
//! X-Bapi-Limit* headers, and the per-account order-create rate limit.

use std::sync::Arc;

use chrono::Utc;
use poem::http::{HeaderMap, Method, StatusCode};
use poem::web::Data;
use poem::{Body, Request, Response, handler};
use serde_json::{Value, json};

use crate::bybit_error::BybitError;
use crate::config::AccountSpec;
use crate::engine::{OrderQuery, OrderRequest, RateLimitStatus};
use crate::exchange::PaperExchange;
use crate::faults::OrderCreateFault;
use crate::signing;

const MAX_BODY_BYTES: usize = 64 * 1024;
/// Bybit's default when X-BAPI-RECV-WINDOW is absent.
const DEFAULT_RECV_WINDOW_MS: i64 = 5000;
/// Bybit accepts client clocks at most this far ahead of its own.
const MAX_CLOCK_AHEAD_MS: i64 = 1000;
/// The read endpoints' documented limit, reported in the headers (not enforced).
const READ_LIMIT_PER_SECOND: u32 = 50;

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// The Bybit envelope, always with `time`, plus the X-Bapi-Limit* headers when given.
fn envelope(ret_code: i64, ret_msg: &str, result: Value, limit: Option<RateLimitStatus>) -> Response {
    let now = now_ms();
    let body = json!({
        "retCode": ret_code,
        "retMsg": ret_msg,
        "result": result,
        "retExtInfo": {},
        "time": now,
    });
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .content_type("application/json")
        .header("Timenow", now.to_string());
    if let Some(limit) = limit {
        response = response
            .header("X-Bapi-Limit", limit.limit.to_string())
            .header("X-Bapi-Limit-Status", limit.remaining.to_string())
            .header("X-Bapi-Limit-Reset-Timestamp", limit.reset_at_ms.to_string());
    }
    response.body(body.to_string())
}

fn ok(result: Value, limit: Option<RateLimitStatus>) -> Response {
    envelope(0, "OK", result, limit)
}

fn bybit_error(error: &BybitError, limit: Option<RateLimitStatus>) -> Response {
    envelope(error.code, &error.msg, json!({}), limit)
}

fn read_limit() -> RateLimitStatus {
    RateLimitStatus {
        allowed: true,
        limit: READ_LIMIT_PER_SECOND,
        remaining: READ_LIMIT_PER_SECOND - 1,
        reset_at_ms: now_ms(),
    }
}

/// Query parameters in the order sent, percent-decoded.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: &str) -> Query {
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
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

fn percent_decode(s: &str) -> String {
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

/// Why a private request was not authenticated.
enum AuthFailure {
    MissingHeader(&'static str),
    Refused(BybitError),
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn authenticate(
    exchange: &PaperExchange,
    headers: &HeaderMap,
    payload: &[u8],
    client_ip: Option<String>,
) -> Result<AccountSpec, AuthFailure> {
    let api_key = header(headers, "X-BAPI-API-KEY").ok_or(AuthFailure::MissingHeader("X-BAPI-API-KEY"))?;
    let signature = header(headers, "X-BAPI-SIGN").ok_or(AuthFailure::MissingHeader("X-BAPI-SIGN"))?;
    let timestamp =
        header(headers, "X-BAPI-TIMESTAMP").ok_or(AuthFailure::MissingHeader("X-BAPI-TIMESTAMP"))?;
    let recv_window_text = header(headers, "X-BAPI-RECV-WINDOW").unwrap_or("");
    let spec = exchange
        .account_spec(api_key)
        .ok_or(AuthFailure::Refused(BybitError::invalid_api_key()))?;

    let server_now = now_ms();
    let recv_window = if recv_window_text.is_empty() {
        Some(DEFAULT_RECV_WINDOW_MS)
    } else {
        recv_window_text.parse::<i64>().ok().filter(|w| *w > 0)
    };
    let timestamp_ms = timestamp.parse::<i64>().ok();
    let in_window = match (timestamp_ms, recv_window) {
        (Some(ts), Some(window)) => server_now - window <= ts && ts < server_now + MAX_CLOCK_AHEAD_MS,
        _ => false,
    };
    if !in_window {
        return Err(AuthFailure::Refused(BybitError::new(
            10002,
            format!(
                "invalid request, please check your server timestamp or recv_window param. \
                 req_timestamp[{timestamp}],server_timestamp[{server_now}],recv_window[{recv_window_text}]"
            ),
        )));
    }
    if !signing::verify_rest(
        &spec.api_secret,
        timestamp,
        api_key,
        recv_window_text,
        payload,
        signature,
    ) {
        // Bybit echoes its prehash with the key masked, which helps a client find its signing bug.
        return Err(AuthFailure::Refused(BybitError::new(
            10004,
            format!(
                "error sign! origin_string[{timestamp}***{recv_window_text}{}]",
                String::from_utf8_lossy(payload)
            ),
        )));
    }
    if let Some(ip) = client_ip
        && !spec.ip_allowed(&ip)
    {
        return Err(AuthFailure::Refused(BybitError::new(
            10010,
            "Unmatched IP, please check your API key's bound IP addresses.",
        )));
    }
    Ok(spec)
}

/// Every `/v5/...` route except the private WebSocket.
#[handler]
pub async fn v5(req: &Request, body: Body, Data(exchange): Data<&Arc<PaperExchange>>) -> Response {
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    if let Some(delay) = exchange
        .faults
        .latency(&path, header(req.headers(), "X-BAPI-API-KEY"))
    {
        tokio::time::sleep(delay).await;
    }
    let query = Query::parse(&raw_query);

    match (&method, path.as_str()) {
        (&Method::GET, "/v5/market/time") => {
            let now = Utc::now();
            return ok(
                json!({
                    "timeSecond": now.timestamp().to_string(),
                    "timeNano": now.timestamp_nanos_opt().unwrap_or_default().to_string(),
                }),
                None,
            );
        }
        (&Method::GET, "/v5/market/instruments-info") => return instruments_info(exchange, &query),
        (&Method::GET, "/v5/market/tickers") => return tickers(exchange, &query),
        _ => {}
    }

    let is_private_route = matches!(
        (&method, path.as_str()),
        (&Method::POST, "/v5/order/create")
            | (&Method::POST, "/v5/order/cancel")
            | (&Method::GET, "/v5/order/realtime")
            | (&Method::GET, "/v5/order/history")
            | (&Method::GET, "/v5/execution/list")
            | (&Method::GET, "/v5/position/list")
            | (&Method::POST, "/v5/position/set-leverage")
            | (&Method::GET, "/v5/account/wallet-balance")
            | (&Method::GET, "/v5/account/info")
            | (&Method::GET, "/v5/user/query-api")
            | (&Method::GET, "/v5/asset/coin/query-info")
    );
    if !is_private_route {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body("Not Found");
    }

    let body_bytes = if method == Method::POST {
        match body.into_bytes_limit(MAX_BODY_BYTES).await {
            Ok(b) => b.to_vec(),
            Err(_) => {
                return Response::builder()
                    .status(StatusCode::PAYLOAD_TOO_LARGE)
                    .body("Payload Too Large");
            }
        }
    } else {
        Vec::new()
    };
    let payload: &[u8] = if method == Method::POST {
        &body_bytes
    } else {
        raw_query.as_bytes()
    };
    let client_ip = req.remote_addr().as_socket_addr().map(|a| a.ip().to_string());
    let spec = match authenticate(exchange, req.headers(), payload, client_ip) {
        Ok(spec) => spec,
        Err(AuthFailure::MissingHeader(name)) => {
            let mut response = envelope(10003, &format!("missing header {name}"), json!({}), None);
            response.set_status(StatusCode::UNAUTHORIZED);
            return response;
        }
        Err(AuthFailure::Refused(error)) => return bybit_error(&error, None),
    };

    let params: Value = if method == Method::POST {
        match serde_json::from_slice::<Value>(&body_bytes) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return bybit_error(
                    &BybitError::params("params error: body is not a JSON object"),
                    Some(read_limit()),
                );
            }
        }
    } else {
        Value::Null
    };

    match path.as_str() {
        "/v5/order/create" => order_create(exchange, &spec, &params).await,
        "/v5/order/cancel" => order_cancel(exchange, &spec, &params),
        "/v5/order/realtime" => order_list(exchange, &spec, &query, true),
        "/v5/order/history" => order_list(exchange, &spec, &query, false),
        "/v5/execution/list" => execution_list(exchange, &spec, &query),
        "/v5/position/list" => position_list(exchange, &spec, &query),
        "/v5/position/set-leverage" => set_leverage(exchange, &spec, &params),
        "/v5/account/wallet-balance" => wallet_balance(exchange, &spec, &query),
        "/v5/account/info" => ok(
            json!({
                "marginMode": "REGULAR_MARGIN",
                "updatedTime": exchange_account_created_ms(exchange, &spec).to_string(),
                "unifiedMarginStatus": 5,
                "dcpStatus": "OFF",
                "timeWindow": 10,
                "smpGroup": 0,
                "isMasterTrader": false,
                "spotHedgingStatus": "OFF"
            }),
            Some(read_limit()),
        ),
        "/v5/user/query-api" => query_api(exchange, &spec),
        "/v5/asset/coin/query-info" => ok(json!({"rows": []}), Some(read_limit())),
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body("Not Found"),
    }
}

fn exchange_account_created_ms(exchange: &PaperExchange, spec: &AccountSpec) -> i64 {
    exchange
        .lock()
        .accounts
        .get(&spec.api_key)
        .map(|a| a.created_at.timestamp_millis())
        .unwrap_or_default()
}

fn category_is_linear(query: &Query) -> bool {
    query.get("category") == Some("linear")
}

fn instruments_info(exchange: &PaperExchange, query: &Query) -> Response {
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
    ok(
        json!({"category": category, "list": list, "nextPageCursor": ""}),
        None,
    )
}

fn tickers(exchange: &PaperExchange, query: &Query) -> Response {
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

fn str_field(params: &Value, key: &str) -> Option<String> {
    match params.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn bool_field(params: &Value, key: &str) -> bool {
    match params.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn order_request(params: &Value) -> Result<OrderRequest, BybitError> {
    let position_idx = match params.get("positionIdx") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_i64()
                .ok_or_else(|| BybitError::params("params error: positionIdx"))?,
        ),
        Some(Value::String(s)) => Some(
            s.parse()
                .map_err(|_| BybitError::params("params error: positionIdx"))?,
        ),
        Some(_) => return Err(BybitError::params("params error: positionIdx")),
    };
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
    })
}

fn plain_status(status: u16, text: &str) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("text/plain")
        .body(text.to_string())
}

async fn order_create(exchange: &PaperExchange, spec: &AccountSpec, params: &Value) -> Response {
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

fn order_cancel(exchange: &PaperExchange, spec: &AccountSpec, params: &Value) -> Response {
    let limit = Some(RateLimitStatus {
        limit: 10,
        remaining: 9,
        ..read_limit()
    });
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

/// Cursor = how many items earlier pages held; Bybit's cursors are opaque, so any string will do.
fn page<T>(items: Vec<T>, query: &Query, default_limit: usize, max_limit: usize) -> (Vec<T>, String) {
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

fn order_list(exchange: &PaperExchange, spec: &AccountSpec, query: &Query, realtime: bool) -> Response {
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

fn execution_list(exchange: &PaperExchange, spec: &AccountSpec, query: &Query) -> Response {
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

fn position_list(exchange: &PaperExchange, spec: &AccountSpec, query: &Query) -> Response {
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

fn set_leverage(exchange: &PaperExchange, spec: &AccountSpec, params: &Value) -> Response {
    let limit = Some(RateLimitStatus {
        limit: 10,
        remaining: 9,
        ..read_limit()
    });
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

fn wallet_balance(exchange: &PaperExchange, spec: &AccountSpec, query: &Query) -> Response {
    if query.get("accountType") != Some("UNIFIED") {
        return bybit_error(
            &BybitError::params("accountType only support UNIFIED."),
            Some(read_limit()),
        );
    }
    let state = exchange.lock();
    let Some(account) = state.accounts.get(&spec.api_key) else {
        return bybit_error(&BybitError::invalid_api_key(), None);
    };
    let mut wallet = state.margin_summary(account).wallet_json();
    drop(state);
    if let Some(coins) = query.get("coin")
        && !coins.split(',').any(|c| c == "USDT")
    {
        wallet["coin"] = json!([]);
    }
    ok(json!({"list": [wallet]}), Some(read_limit()))
}

fn query_api(exchange: &PaperExchange, spec: &AccountSpec) -> Response {
    let (user_id, created) = {
        let state = exchange.lock();
        match state.accounts.get(&spec.api_key) {
            Some(a) => (a.user_id, a.created_at),
            None => return bybit_error(&BybitError::invalid_api_key(), None),
        }
    };
    let bound = !spec.ips.is_empty() && !spec.ips.iter().any(|ip| ip == "*");
    ok(
        json!({
            "id": user_id.to_string(),
            "note": "paper",
            "apiKey": spec.api_key,
            "readOnly": if spec.read_only { 1 } else { 0 },
            "secret": "",
            "permissions": spec.permissions,
            "ips": if spec.ips.is_empty() { vec!["*".to_string()] } else { spec.ips.clone() },
            "type": 1,
            "deadlineDay": if bound { -2 } else { 90 },
            "expiredAt": if bound { "1970-01-01T00:00:00Z".to_string() }
                else { (created + chrono::Duration::days(90)).format("%Y-%m-%dT%H:%M:%SZ").to_string() },
            "createdAt": created.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "unified": 0,
            "uta": 1,
            "userID": user_id,
            "inviterID": 0,
            "vipLevel": "No VIP",
            "mktMakerLevel": "0",
            "affiliateID": 0,
            "rsaPublicKey": "",
            "isMaster": true,
            "parentUid": "0",
            "kycLevel": "LEVEL_1",
            "kycRegion": ""
        }),
        Some(RateLimitStatus {
            limit: 10,
            remaining: 9,
            ..read_limit()
        }),
    )
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
