//! The account and its API key: wallet balance, account info, margin mode, query-api and the coin
//! info ccxt asks for.

use chrono::Utc;
use poem::Response;
use serde_json::{Value, json};

use super::envelope::{bybit_error, ok, read_limit, ten_per_second_limit};
use super::params::{Query, str_field};
use crate::bybit_error::BybitError;
use crate::config::AccountSpec;
use crate::exchange::PaperExchange;

pub(super) fn wallet_balance(exchange: &PaperExchange, spec: &AccountSpec, query: &Query) -> Response {
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

pub(super) fn query_api(exchange: &PaperExchange, spec: &AccountSpec) -> Response {
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
        Some(ten_per_second_limit()),
    )
}

fn exchange_account_created_ms(exchange: &PaperExchange, spec: &AccountSpec) -> i64 {
    exchange
        .lock()
        .accounts
        .get(&spec.api_key)
        .map(|a| a.created_at.timestamp_millis())
        .unwrap_or_default()
}

pub(super) fn account_info(exchange: &PaperExchange, spec: &AccountSpec) -> Response {
    let margin_mode = exchange
        .lock()
        .accounts
        .get(&spec.api_key)
        .map(|a| a.margin_mode.as_str())
        .unwrap_or("REGULAR_MARGIN");
    ok(
        json!({
            "marginMode": margin_mode,
            "updatedTime": exchange_account_created_ms(exchange, spec).to_string(),
            "unifiedMarginStatus": 5,
            "dcpStatus": "OFF",
            "timeWindow": 10,
            "smpGroup": 0,
            "isMasterTrader": false,
            "spotHedgingStatus": "OFF"
        }),
        Some(read_limit()),
    )
}

/// `/v5/account/set-margin-mode` (unified account, account-wide): `{"reasons": []}` on success.
pub(super) fn set_margin_mode(exchange: &PaperExchange, spec: &AccountSpec, params: &Value) -> Response {
    let limit = Some(ten_per_second_limit());
    let mode = str_field(params, "setMarginMode");
    let outcome =
        exchange
            .lock_for_account(&spec.api_key)
            .set_margin_mode(&spec.api_key, mode.as_deref(), Utc::now());
    match outcome {
        Ok(pushes) => {
            exchange.publish(&spec.api_key, pushes);
            ok(json!({"reasons": []}), limit)
        }
        Err(error) => bybit_error(&error, limit),
    }
}

/// Asked by ccxt while loading markets; no coin is simulated.
pub(super) fn coin_info() -> Response {
    ok(json!({"rows": []}), Some(read_limit()))
}
