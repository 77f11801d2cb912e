//! The account's positions and money, and the settings HUMBEX changes: leverage, margin mode,
//! position mode and the position's TP/SL/trailing stop (trading-stop). A setting Bybit reports as
//! "not modified" is [`SettingOutcome::AlreadySet`], not an error.

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::{Answer, BybitRest, CATEGORY, decode};
use crate::error::BybitError;
use crate::model::{
    AccountInfo, ApiKeyInfo, BybitResponse, MarginMode, Position, PositionMode, RateLimitStatus,
    SettingOutcome, TradingStopRequest, UsdtBalance, WalletAccount,
};
use crate::parse;
use crate::signing::Credentials;

/// 110043 leverage not modified.
pub const RET_LEVERAGE_NOT_MODIFIED: i64 = 110043;
/// 110025 position mode not modified.
pub const RET_POSITION_MODE_NOT_MODIFIED: i64 = 110025;
/// 110026 margin mode not modified (documented for the classic per-symbol switch; accepted here
/// too in case a unified account answers it).
pub const RET_MARGIN_MODE_NOT_MODIFIED: i64 = 110026;
/// 34040 trading-stop not modified.
pub const RET_TRADING_STOP_NOT_MODIFIED: i64 = 34040;

/// Maps a settings answer: success is `Changed`, the listed "not modified" codes `AlreadySet`.
fn setting(
    answer: Result<Answer, BybitError>,
    not_modified: &[i64],
) -> Result<BybitResponse<SettingOutcome>, BybitError> {
    match answer {
        Ok(answer) => decode(answer, |_| Ok(SettingOutcome::Changed)),
        Err(BybitError::Rejected { code, .. }) if not_modified.contains(&code) => Ok(BybitResponse {
            value: SettingOutcome::AlreadySet,
            rate_limit: RateLimitStatus::default(),
            server_time_ms: None,
        }),
        Err(error) => Err(error),
    }
}

fn decimal_text(value: Decimal) -> String {
    value.normalize().to_string()
}

impl BybitRest {
    /// `GET /v5/position/list` for one symbol: one row in one-way mode (flat rows included), two in
    /// hedge mode.
    #[tracing::instrument(skip(self, credentials), fields(api_key = %credentials.masked_key()))]
    pub async fn position_list(
        &self,
        credentials: &Credentials,
        symbol: &str,
    ) -> Result<BybitResponse<Vec<Position>>, BybitError> {
        let envelope = self
            .signed_get(
                credentials,
                "/v5/position/list",
                &[("category", CATEGORY), ("symbol", symbol)],
            )
            .await?;
        decode(envelope, |r| parse::parse_positions(r).map(|p| p.items))
    }

    /// Every open USDT position of the account (`settleCoin=USDT`, all pages).
    #[tracing::instrument(skip_all, fields(api_key = %credentials.masked_key()))]
    pub async fn open_positions(&self, credentials: &Credentials) -> Result<Vec<Position>, BybitError> {
        let mut positions = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..super::MAX_PAGES {
            let mut query = vec![("category", CATEGORY), ("settleCoin", "USDT"), ("limit", "200")];
            if let Some(cursor) = cursor.as_deref() {
                query.push(("cursor", cursor));
            }
            let envelope = self.signed_get(credentials, "/v5/position/list", &query).await?;
            let page = decode(envelope, parse::parse_positions)?.value;
            positions.extend(page.items.into_iter().filter(|p| !p.is_flat()));
            match page.next_page_cursor {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => return Ok(positions),
            }
        }
        Err(BybitError::Ambiguous {
            reason: "position list did not end".into(),
        })
    }

    /// `POST /v5/position/set-leverage`, the same leverage both ways (one-way mode requires it).
    #[tracing::instrument(skip(self, credentials), fields(api_key = %credentials.masked_key()))]
    pub async fn set_leverage(
        &self,
        credentials: &Credentials,
        symbol: &str,
        leverage: Decimal,
    ) -> Result<BybitResponse<SettingOutcome>, BybitError> {
        let leverage = decimal_text(leverage);
        let body = json!({"category": CATEGORY, "symbol": symbol, "buyLeverage": leverage, "sellLeverage": leverage});
        let answer = self
            .signed_post(credentials, "/v5/position/set-leverage", &body)
            .await;
        setting(answer, &[RET_LEVERAGE_NOT_MODIFIED])
    }

    /// `POST /v5/account/set-margin-mode`: a unified account's margin mode is account-wide.
    #[tracing::instrument(skip(self, credentials), fields(api_key = %credentials.masked_key()))]
    pub async fn set_margin_mode(
        &self,
        credentials: &Credentials,
        mode: MarginMode,
    ) -> Result<BybitResponse<SettingOutcome>, BybitError> {
        let body = json!({"setMarginMode": mode.as_str()});
        let answer = self
            .signed_post(credentials, "/v5/account/set-margin-mode", &body)
            .await;
        setting(answer, &[RET_MARGIN_MODE_NOT_MODIFIED])
    }

    /// `POST /v5/position/switch-mode` for one symbol (Bybit refuses while positions or orders
    /// are open: 110024 and friends come back as `Rejected`).
    #[tracing::instrument(skip(self, credentials), fields(api_key = %credentials.masked_key()))]
    pub async fn switch_position_mode(
        &self,
        credentials: &Credentials,
        symbol: &str,
        mode: PositionMode,
    ) -> Result<BybitResponse<SettingOutcome>, BybitError> {
        let body = json!({"category": CATEGORY, "symbol": symbol, "mode": mode.wire()});
        let answer = self
            .signed_post(credentials, "/v5/position/switch-mode", &body)
            .await;
        setting(answer, &[RET_POSITION_MODE_NOT_MODIFIED])
    }

    /// `POST /v5/position/trading-stop` with tpslMode Full: sets, replaces or cancels (`0`) the
    /// position's take profit, stop loss and trailing stop. A flat position is refused (10001).
    #[tracing::instrument(
        skip(self, credentials, request),
        fields(api_key = %credentials.masked_key(), symbol = %request.symbol)
    )]
    pub async fn set_trading_stop(
        &self,
        credentials: &Credentials,
        request: &TradingStopRequest,
    ) -> Result<BybitResponse<SettingOutcome>, BybitError> {
        let body = trading_stop_body(request)?;
        let answer = self
            .signed_post(credentials, "/v5/position/trading-stop", &body)
            .await;
        setting(answer, &[RET_TRADING_STOP_NOT_MODIFIED])
    }

    /// `GET /v5/account/wallet-balance?accountType=UNIFIED`.
    #[tracing::instrument(skip_all, fields(api_key = %credentials.masked_key()))]
    pub async fn wallet_balance(
        &self,
        credentials: &Credentials,
    ) -> Result<BybitResponse<Vec<WalletAccount>>, BybitError> {
        let envelope = self
            .signed_get(
                credentials,
                "/v5/account/wallet-balance",
                &[("accountType", "UNIFIED")],
            )
            .await?;
        decode(envelope, parse::parse_wallet_balance)
    }

    /// The unified account's USDT equity and available balance (`coin=USDT`, so the row is there
    /// even at zero). `None` if Bybit lists no USDT.
    #[tracing::instrument(skip_all, fields(api_key = %credentials.masked_key()))]
    pub async fn usdt_balance(
        &self,
        credentials: &Credentials,
    ) -> Result<BybitResponse<Option<UsdtBalance>>, BybitError> {
        let envelope = self
            .signed_get(
                credentials,
                "/v5/account/wallet-balance",
                &[("accountType", "UNIFIED"), ("coin", "USDT")],
            )
            .await?;
        decode(envelope, |r| {
            parse::parse_wallet_balance(r).map(|accounts| accounts.iter().find_map(WalletAccount::usdt))
        })
    }

    /// `GET /v5/account/info`: the account's margin mode.
    #[tracing::instrument(skip_all, fields(api_key = %credentials.masked_key()))]
    pub async fn account_info(
        &self,
        credentials: &Credentials,
    ) -> Result<BybitResponse<AccountInfo>, BybitError> {
        let envelope = self.signed_get(credentials, "/v5/account/info", &[]).await?;
        decode(envelope, parse::parse_account_info)
    }

    /// `GET /v5/user/query-api`: the permissions of the signing key. Feed it to
    /// [`crate::key_check::evaluate_api_key`].
    #[tracing::instrument(skip_all, fields(api_key = %credentials.masked_key()))]
    pub async fn query_api(
        &self,
        credentials: &Credentials,
    ) -> Result<BybitResponse<ApiKeyInfo>, BybitError> {
        let envelope = self.signed_get(credentials, "/v5/user/query-api", &[]).await?;
        decode(envelope, parse::parse_api_key_info)
    }
}

/// The exact body for trading-stop: decimals as strings, `positionIdx` as a number; only the
/// stops the request names are sent, so the others stay as they are.
pub fn trading_stop_body(request: &TradingStopRequest) -> Result<Value, BybitError> {
    let fields = [
        ("takeProfit", request.take_profit),
        ("stopLoss", request.stop_loss),
        ("trailingStop", request.trailing_stop),
        ("activePrice", request.active_price),
    ];
    if fields[..3].iter().all(|(_, v)| v.is_none()) {
        return Err(BybitError::InvalidRequest {
            reason: "trading-stop needs a take profit, stop loss or trailing stop".into(),
        });
    }
    let mut body = Map::new();
    body.insert("category".into(), json!(CATEGORY));
    body.insert("symbol".into(), json!(request.symbol));
    body.insert("tpslMode".into(), json!("Full"));
    body.insert("positionIdx".into(), json!(u8::from(request.position_idx)));
    for (name, value) in fields {
        if let Some(value) = value {
            if value.is_sign_negative() {
                return Err(BybitError::InvalidRequest {
                    reason: format!("{name} must not be negative, got {value}"),
                });
            }
            body.insert(name.into(), json!(decimal_text(value)));
        }
    }
    Ok(Value::Object(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PositionIdx;

    #[test]
    fn trading_stop_body_sends_only_named_stops() {
        let request = TradingStopRequest {
            symbol: "AVAXUSDT".into(),
            position_idx: PositionIdx::OneWay,
            stop_loss: Some("23.500".parse().unwrap()),
            take_profit: Some(Decimal::ZERO),
            ..Default::default()
        };
        assert_eq!(
            trading_stop_body(&request).unwrap(),
            json!({"category": "linear", "symbol": "AVAXUSDT", "tpslMode": "Full", "positionIdx": 0,
                   "takeProfit": "0", "stopLoss": "23.5"})
        );
        let nothing = TradingStopRequest {
            symbol: "AVAXUSDT".into(),
            ..Default::default()
        };
        assert!(trading_stop_body(&nothing).is_err());
    }
}
