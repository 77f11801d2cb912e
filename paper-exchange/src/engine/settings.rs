//! Per-account trading settings changed through Bybit's position and account endpoints: leverage,
//! position protection (trading-stop), margin mode and position mode.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{EngineResult, ExchangeState, MarginMode, Push, Topic};
use crate::bybit_error::BybitError;
use crate::config::PositionMode;

impl ExchangeState {
    pub fn set_leverage(
        &mut self,
        api_key: &str,
        symbol: &str,
        buy: Option<&str>,
        sell: Option<&str>,
        now: DateTime<Utc>,
    ) -> EngineResult<Vec<Push>> {
        let instrument = self
            .instruments
            .get(symbol)
            .cloned()
            .ok_or_else(|| BybitError::params(format!("params error: symbol invalid {symbol}")))?;
        let parse = |s: Option<&str>| s.and_then(|v| v.parse::<Decimal>().ok());
        let (Some(buy), Some(sell)) = (parse(buy), parse(sell)) else {
            return Err(BybitError::params(
                "params error: buyLeverage and sellLeverage are required",
            ));
        };
        let account = self
            .accounts
            .get_mut(api_key)
            .ok_or_else(BybitError::invalid_api_key)?;
        if account.spec.position_mode == PositionMode::OneWay && buy != sell {
            return Err(BybitError::params(
                "buy leverage must equal sell leverage in one-way mode",
            ));
        }
        if buy < Decimal::ONE || buy > instrument.max_leverage || !(buy % Decimal::new(1, 2)).is_zero() {
            return Err(BybitError::new(10001, "leverage invalid"));
        }
        if account.leverage(symbol) == buy {
            return Err(BybitError::new(110043, "leverage not modified"));
        }
        account.leverage_by_symbol.insert(symbol.to_string(), buy);
        let mut pushes = Vec::new();
        for &idx in account.position_indexes() {
            let position = account.position_mut(symbol, idx, now);
            position.leverage = buy;
            position.updated_at = now;
        }
        for &idx in self.accounts[api_key].position_indexes() {
            let account = &self.accounts[api_key];
            let position = account.position_snapshot(symbol, idx, now);
            pushes.push(Push::new(
                Topic::Position,
                vec![self.position_json(account, &position, true)],
            ));
        }
        Ok(pushes)
    }
}

/// The fields of `/v5/position/trading-stop`, as sent.
#[derive(Clone, Debug, Default)]
pub struct TradingStopRequest {
    pub symbol: String,
    pub position_idx: Option<i64>,
    pub tpsl_mode: Option<String>,
    pub take_profit: Option<String>,
    pub stop_loss: Option<String>,
    pub trailing_stop: Option<String>,
    pub active_price: Option<String>,
}

/// A trading-stop price: absent = unchanged, `"0"` = cancel, else a positive price.
fn stop_field(text: Option<&str>, field: &str) -> EngineResult<Option<Option<Decimal>>> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => match t.parse::<Decimal>() {
            Ok(p) if p.is_zero() => Ok(Some(None)),
            Ok(p) if p > Decimal::ZERO => Ok(Some(Some(p))),
            _ => Err(BybitError::params(format!("params error: {field} invalid"))),
        },
    }
}

impl ExchangeState {
    /// `/v5/position/trading-stop` (tpslMode Full): sets, replaces or (with "0") cancels the take
    /// profit, stop loss and trailing stop of an open position.
    pub fn trading_stop(
        &mut self,
        api_key: &str,
        request: &TradingStopRequest,
        now: DateTime<Utc>,
    ) -> EngineResult<Vec<Push>> {
        let symbol = request.symbol.as_str();
        let last = self
            .instruments
            .get(symbol)
            .map(|i| i.price)
            .ok_or_else(|| BybitError::params(format!("params error: symbol invalid {symbol}")))?;
        if !matches!(request.tpsl_mode.as_deref(), None | Some("") | Some("Full")) {
            return Err(BybitError::params(
                "params error: tpslMode invalid (the paper exchange supports Full)",
            ));
        }
        let take_profit = stop_field(request.take_profit.as_deref(), "takeProfit")?;
        let stop_loss = stop_field(request.stop_loss.as_deref(), "stopLoss")?;
        let trailing_stop = stop_field(request.trailing_stop.as_deref(), "trailingStop")?;
        let active_price = stop_field(request.active_price.as_deref(), "activePrice")?;
        let account = self
            .accounts
            .get_mut(api_key)
            .ok_or_else(BybitError::invalid_api_key)?;
        let idx = match (account.spec.position_mode, request.position_idx.unwrap_or(0)) {
            (PositionMode::OneWay, 0) => 0u8,
            (PositionMode::Hedge, idx @ (1 | 2)) => idx as u8,
            _ => return Err(BybitError::params("position idx not match position mode")),
        };
        let position = account
            .positions
            .get_mut(&(symbol.to_string(), idx))
            .filter(|p| !p.size.is_zero())
            .ok_or_else(|| BybitError::params("can not set tp/sl/ts for zero position"))?;
        let side = position.side.expect("an open position has a side");
        super::conditions::check_tpsl_side(side, last, take_profit.flatten(), stop_loss.flatten())?;
        if let Some(tp) = take_profit {
            position.take_profit = tp;
        }
        if let Some(sl) = stop_loss {
            position.stop_loss = sl;
        }
        if let Some(distance) = trailing_stop {
            position.trailing_stop = distance;
            position.active_price = active_price.flatten();
            // Without an activation price the trail starts from the current price.
            position.trail_peak = match (distance, position.active_price) {
                (Some(_), None) => Some(last),
                _ => None,
            };
        }
        position.updated_at = now;
        let mut pushes = Vec::new();
        self.push_position_wallet(api_key, symbol, idx, now, &mut pushes);
        Ok(pushes)
    }

    /// `/v5/account/set-margin-mode`: account-wide for a unified account. Setting the current
    /// mode again succeeds (Bybit documents no "not modified" code for this endpoint).
    pub fn set_margin_mode(
        &mut self,
        api_key: &str,
        mode: Option<&str>,
        now: DateTime<Utc>,
    ) -> EngineResult<Vec<Push>> {
        let mode = mode
            .and_then(MarginMode::parse)
            .ok_or_else(|| BybitError::params("params error: setMarginMode invalid"))?;
        let account = self
            .accounts
            .get_mut(api_key)
            .ok_or_else(BybitError::invalid_api_key)?;
        account.margin_mode = mode;
        // Liquidation prices move with the mode: push every open position.
        let open: Vec<(String, u8)> = account
            .positions
            .iter()
            .filter(|(_, p)| !p.size.is_zero())
            .map(|(k, _)| k.clone())
            .collect();
        let mut pushes = Vec::new();
        for (symbol, idx) in open {
            self.push_position_wallet(api_key, &symbol, idx, now, &mut pushes);
        }
        Ok(pushes)
    }

    /// `/v5/position/switch-mode` (mode 0 one-way, 3 hedge). The paper exchange keeps one mode per
    /// account, so any symbol or coin switches the whole account; refused while anything is open.
    pub fn switch_position_mode(&mut self, api_key: &str, mode: Option<i64>) -> EngineResult<()> {
        let mode = match mode {
            Some(0) => PositionMode::OneWay,
            Some(3) => PositionMode::Hedge,
            _ => return Err(BybitError::params("params error: mode invalid")),
        };
        let account = self
            .accounts
            .get_mut(api_key)
            .ok_or_else(BybitError::invalid_api_key)?;
        if account.spec.position_mode == mode {
            return Err(BybitError::new(110025, "Position mode is not modified"));
        }
        if account.positions.values().any(|p| !p.size.is_zero()) {
            return Err(BybitError::new(
                110024,
                "You have an existing position, so position mode cannot be switched",
            ));
        }
        if !account.open_order_indexes.is_empty() {
            return Err(BybitError::new(
                110028,
                "You have existing open orders, so position mode cannot be switched",
            ));
        }
        account.spec.position_mode = mode;
        Ok(())
    }
}
