//! Bybit V5 REST: routing of `/v5/...`, then one module per concern: the response envelope, request
//! parameters, authentication, market data, orders, positions and the account.

mod account;
mod auth;
mod envelope;
mod market;
mod order;
mod params;
mod position;

use std::sync::Arc;

use poem::http::{Method, StatusCode};
use poem::web::Data;
use poem::{Body, Request, Response, handler};
use serde_json::{Value, json};

use self::auth::{AuthFailure, authenticate, header};
use self::envelope::{bybit_error, envelope, read_limit};
use self::params::Query;
use crate::bybit_error::BybitError;
use crate::exchange::PaperExchange;

const MAX_BODY_BYTES: usize = 64 * 1024;

/// The private routes, each named once: recognised before authentication, dispatched after it.
#[derive(Clone, Copy)]
enum PrivateRoute {
    OrderCreate,
    OrderCancel,
    OrderCancelAll,
    OrderRealtime,
    OrderHistory,
    ExecutionList,
    PositionList,
    SetLeverage,
    TradingStop,
    SwitchMode,
    SetMarginMode,
    WalletBalance,
    AccountInfo,
    QueryApi,
    CoinInfo,
}

impl PrivateRoute {
    fn of(method: &Method, path: &str) -> Option<PrivateRoute> {
        Some(match (method, path) {
            (&Method::POST, "/v5/order/create") => PrivateRoute::OrderCreate,
            (&Method::POST, "/v5/order/cancel") => PrivateRoute::OrderCancel,
            (&Method::POST, "/v5/order/cancel-all") => PrivateRoute::OrderCancelAll,
            (&Method::GET, "/v5/order/realtime") => PrivateRoute::OrderRealtime,
            (&Method::GET, "/v5/order/history") => PrivateRoute::OrderHistory,
            (&Method::GET, "/v5/execution/list") => PrivateRoute::ExecutionList,
            (&Method::GET, "/v5/position/list") => PrivateRoute::PositionList,
            (&Method::POST, "/v5/position/set-leverage") => PrivateRoute::SetLeverage,
            (&Method::POST, "/v5/position/trading-stop") => PrivateRoute::TradingStop,
            (&Method::POST, "/v5/position/switch-mode") => PrivateRoute::SwitchMode,
            (&Method::POST, "/v5/account/set-margin-mode") => PrivateRoute::SetMarginMode,
            (&Method::GET, "/v5/account/wallet-balance") => PrivateRoute::WalletBalance,
            (&Method::GET, "/v5/account/info") => PrivateRoute::AccountInfo,
            (&Method::GET, "/v5/user/query-api") => PrivateRoute::QueryApi,
            (&Method::GET, "/v5/asset/coin/query-info") => PrivateRoute::CoinInfo,
            _ => return None,
        })
    }
}

fn not_found() -> Response {
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .body("Not Found")
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
        (&Method::GET, "/v5/market/time") => return market::server_time(),
        (&Method::GET, "/v5/market/instruments-info") => return market::instruments_info(exchange, &query),
        (&Method::GET, "/v5/market/tickers") => return market::tickers(exchange, &query),
        _ => {}
    }
    let Some(route) = PrivateRoute::of(&method, &path) else {
        return not_found();
    };

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
    exchange.count_request(&spec.api_key, &path);

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

    match route {
        PrivateRoute::OrderCreate => order::order_create(exchange, &spec, &params).await,
        PrivateRoute::OrderCancel => order::order_cancel(exchange, &spec, &params),
        PrivateRoute::OrderCancelAll => order::order_cancel_all(exchange, &spec, &params),
        PrivateRoute::OrderRealtime => order::order_list(exchange, &spec, &query, true),
        PrivateRoute::OrderHistory => order::order_list(exchange, &spec, &query, false),
        PrivateRoute::ExecutionList => order::execution_list(exchange, &spec, &query),
        PrivateRoute::PositionList => position::position_list(exchange, &spec, &query),
        PrivateRoute::SetLeverage => position::set_leverage(exchange, &spec, &params),
        PrivateRoute::TradingStop => position::trading_stop(exchange, &spec, &params),
        PrivateRoute::SwitchMode => position::switch_mode(exchange, &spec, &params),
        PrivateRoute::SetMarginMode => account::set_margin_mode(exchange, &spec, &params),
        PrivateRoute::WalletBalance => account::wallet_balance(exchange, &spec, &query),
        PrivateRoute::AccountInfo => account::account_info(exchange, &spec),
        PrivateRoute::QueryApi => account::query_api(exchange, &spec),
        PrivateRoute::CoinInfo => account::coin_info(),
    }
}
