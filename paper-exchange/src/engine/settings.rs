//! Per-account trading settings changed through Bybit's position endpoints: leverage today.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{EngineResult, ExchangeState, Push, Topic};
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
            pushes.push(Push::new(
                Topic::Position,
                vec![position.to_bybit_json(&instrument, true)],
            ));
        }
        Ok(pushes)
    }
}
