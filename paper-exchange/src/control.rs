//! The control API under `/paper/` (not Bybit's): accounts, prices, inspection and fault injection,
//! in HUMBEX's own JSON style (snake_case, decimals as strings, `{"error","message"}` on failure).

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Body, Response, handler};
use rust_decimal::Decimal;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;

use crate::config::{AccountSpec, Permissions, PositionMode};
use crate::exchange::PaperExchange;
use crate::faults::Fault;

const MAX_BODY_BYTES: usize = 64 * 1024;

fn json_response(status: StatusCode, body: impl Serialize) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(serde_json::to_string(&body).expect("serialisable"))
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json_response(status, json!({"error": code, "message": message.into()}))
}

/// A decimal given as a JSON string or number, parsed from its text so it never passes through f64.
#[derive(Clone, Copy, Debug)]
pub struct DecimalInput(pub Decimal);

impl<'de> Deserialize<'de> for DecimalInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        let text = raw.get().trim();
        let text = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        let parsed = if text.contains(['e', 'E']) {
            Decimal::from_scientific(text)
        } else {
            text.parse()
        };
        parsed
            .map(DecimalInput)
            .map_err(|_| D::Error::custom(format!("{text} is not a decimal number")))
    }
}

async fn parse_body<T: DeserializeOwned>(body: Body) -> Result<T, Response> {
    let bytes = body.into_bytes_limit(MAX_BODY_BYTES).await.map_err(|_| {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the body is larger than 64 KiB",
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| error(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAccountBody {
    api_key: String,
    api_secret: String,
    balance_usdt: Option<DecimalInput>,
    permissions: Option<Permissions>,
    ips: Option<Vec<String>>,
    position_mode: Option<PositionMode>,
    read_only: Option<bool>,
    order_create_limit_per_second: Option<u32>,
}

fn account_view(exchange: &PaperExchange, api_key: &str) -> Option<serde_json::Value> {
    let private_connections = exchange.private_connections(api_key);
    let state = exchange.lock();
    let account = state.accounts.get(api_key)?;
    let margin = state.margin_summary(account);
    Some(json!({
        "api_key": account.spec.api_key,
        "user_id": account.user_id,
        "position_mode": account.spec.position_mode,
        "permissions": account.spec.permissions,
        "read_only": account.spec.read_only,
        "ips": account.spec.ips,
        "order_create_limit_per_second": account.spec.order_create_limit_per_second,
        "balance_usdt": margin.wallet_balance,
        "equity_usdt": margin.equity,
        "available_usdt": margin.available,
        "unrealised_pnl_usdt": margin.unrealised_pnl,
        "created_at": account.created_at,
        "private_connections": private_connections,
        "requests": exchange.request_counts(api_key),
    }))
}

#[handler]
pub async fn create_account(body: Body, Data(exchange): Data<&Arc<PaperExchange>>) -> Response {
    let body: CreateAccountBody = match parse_body(body).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    if body.api_key.is_empty() || body.api_secret.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "api_key and api_secret must not be empty",
        );
    }
    let config = exchange.config();
    let mut spec = AccountSpec::new(
        body.api_key.clone(),
        body.api_secret,
        body.balance_usdt
            .map(|d| d.0)
            .unwrap_or(config.default_balance_usdt),
    );
    if spec.balance_usdt.is_sign_negative() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "balance_usdt must not be negative",
        );
    }
    spec.order_create_limit_per_second = body
        .order_create_limit_per_second
        .unwrap_or(config.default_order_create_limit_per_second);
    if let Some(p) = body.permissions {
        spec.permissions = p;
    }
    if let Some(ips) = body.ips {
        spec.ips = ips;
    }
    spec.position_mode = body.position_mode.unwrap_or_default();
    spec.read_only = body.read_only.unwrap_or(false);
    if exchange.create_account(spec).is_err() {
        return error(
            StatusCode::CONFLICT,
            "account_exists",
            format!("api_key {} already has an account", body.api_key),
        );
    }
    json_response(StatusCode::CREATED, account_view(exchange, &body.api_key))
}

/// What a user can change on Bybit's site after the key was registered with HUMBEX.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModifyAccountBody {
    permissions: Option<Permissions>,
    ips: Option<Vec<String>>,
    read_only: Option<bool>,
    balance_usdt: Option<DecimalInput>,
}

/// PATCH /paper/accounts/{api_key}: change a key's permissions, IP binding or read-only flag, as a
/// user can in Bybit's API management; query-api reports the change from the next call on. A new
/// `balance_usdt` is a transfer in or out: the `wallet` topic pushes it.
#[handler]
pub async fn modify_account(
    Path(api_key): Path<String>,
    body: Body,
    Data(exchange): Data<&Arc<PaperExchange>>,
) -> Response {
    let body: ModifyAccountBody = match parse_body(body).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    if body.balance_usdt.is_some_and(|b| b.0.is_sign_negative()) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "balance_usdt must not be negative",
        );
    }
    {
        let mut state = exchange.lock();
        let Some(account) = state.accounts.get_mut(&api_key) else {
            return account_not_found(&api_key);
        };
        if let Some(permissions) = body.permissions {
            account.spec.permissions = permissions;
        }
        if let Some(ips) = body.ips {
            account.spec.ips = ips;
        }
        if let Some(read_only) = body.read_only {
            account.spec.read_only = read_only;
        }
    }
    if let Some(balance) = body.balance_usdt
        && exchange.set_balance(&api_key, balance.0).is_err()
    {
        return account_not_found(&api_key);
    }
    json_response(StatusCode::OK, account_view(exchange, &api_key))
}

#[handler]
pub fn get_account(Path(api_key): Path<String>, Data(exchange): Data<&Arc<PaperExchange>>) -> Response {
    match account_view(exchange, &api_key) {
        Some(view) => json_response(StatusCode::OK, view),
        None => account_not_found(&api_key),
    }
}

fn account_not_found(api_key: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "account_not_found",
        format!("no account has api_key {api_key}"),
    )
}

#[handler]
pub fn account_orders(Path(api_key): Path<String>, Data(exchange): Data<&Arc<PaperExchange>>) -> Response {
    match exchange.orders(&api_key) {
        Ok(list) => json_response(StatusCode::OK, list),
        Err(_) => account_not_found(&api_key),
    }
}

#[handler]
pub fn account_executions(
    Path(api_key): Path<String>,
    Data(exchange): Data<&Arc<PaperExchange>>,
) -> Response {
    match exchange.executions(&api_key) {
        Ok(list) => json_response(StatusCode::OK, list),
        Err(_) => account_not_found(&api_key),
    }
}

#[handler]
pub fn account_positions(Path(api_key): Path<String>, Data(exchange): Data<&Arc<PaperExchange>>) -> Response {
    match exchange.positions(&api_key) {
        Ok(list) => json_response(StatusCode::OK, list),
        Err(_) => account_not_found(&api_key),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPriceBody {
    price: DecimalInput,
    /// Partial fills: each resting order this move crosses fills by at most this quantity.
    max_fill_qty: Option<DecimalInput>,
}

#[handler]
pub async fn set_price(
    Path(symbol): Path<String>,
    body: Body,
    Data(exchange): Data<&Arc<PaperExchange>>,
) -> Response {
    let body: SetPriceBody = match parse_body(body).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    if body.price.0 <= Decimal::ZERO {
        return error(StatusCode::BAD_REQUEST, "invalid_body", "price must be positive");
    }
    let max_fill_qty = body.max_fill_qty.map(|q| q.0);
    if max_fill_qty.is_some_and(|q| q <= Decimal::ZERO) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "max_fill_qty must be positive",
        );
    }
    match exchange.set_price_with(&symbol, body.price.0, max_fill_qty) {
        Ok(price) => json_response(StatusCode::OK, json!({"symbol": symbol, "price": price})),
        Err(_) => error(
            StatusCode::NOT_FOUND,
            "symbol_not_found",
            format!("symbol {symbol} is not listed"),
        ),
    }
}

#[handler]
pub fn list_prices(Data(exchange): Data<&Arc<PaperExchange>>) -> Response {
    let state = exchange.lock();
    let list: Vec<_> = state
        .instruments
        .values()
        .map(|i| json!({"symbol": i.symbol, "price": i.price}))
        .collect();
    json_response(StatusCode::OK, list)
}

#[handler]
pub async fn add_fault(body: Body, Data(exchange): Data<&Arc<PaperExchange>>) -> Response {
    let fault: Fault = match parse_body(body).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    match exchange.add_fault(fault) {
        Ok(active) => json_response(StatusCode::CREATED, active),
        Err(e) => error(StatusCode::BAD_REQUEST, "invalid_fault", e.to_string()),
    }
}

#[handler]
pub fn list_faults(Data(exchange): Data<&Arc<PaperExchange>>) -> Response {
    json_response(StatusCode::OK, exchange.faults())
}

#[handler]
pub fn clear_faults(Data(exchange): Data<&Arc<PaperExchange>>) -> Response {
    json_response(StatusCode::OK, json!({"cleared": exchange.clear_faults()}))
}
