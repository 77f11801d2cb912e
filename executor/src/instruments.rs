//! Lot rules per symbol from /v5/market/instruments-info, fetched once and refreshed every few
//! minutes, so no signal waits for an instrument fetch.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use humbex_bybit::BybitRest;
use tokio::sync::Mutex;

use crate::plan::LotRules;

const REFRESH_AFTER: Duration = Duration::from_secs(600);

pub struct InstrumentCache {
    rest: BybitRest,
    rules: Mutex<HashMap<String, (LotRules, Instant)>>,
}

impl InstrumentCache {
    pub fn new(rest: BybitRest) -> Self {
        InstrumentCache {
            rest,
            rules: Mutex::new(HashMap::new()),
        }
    }

    /// The symbol's lot rules; a stale entry is still served if the refresh fails.
    #[tracing::instrument(skip(self))]
    pub async fn lot_rules(&self, symbol: &str) -> anyhow::Result<LotRules> {
        let cached = self.rules.lock().await.get(symbol).copied();
        if let Some((rules, at)) = cached
            && at.elapsed() < REFRESH_AFTER
        {
            return Ok(rules);
        }
        match self.rest.instruments_info(symbol).await {
            Ok(resp) => {
                let info = resp
                    .value
                    .ok_or_else(|| anyhow::anyhow!("the exchange does not list {symbol}"))?;
                let lot = &info.lot_size_filter;
                let rules = LotRules {
                    qty_step: lot.qty_step,
                    min_order_qty: lot.min_order_qty,
                    max_order_qty: lot.max_order_qty,
                    max_market_order_qty: lot.max_mkt_order_qty,
                };
                self.rules
                    .lock()
                    .await
                    .insert(symbol.to_owned(), (rules, Instant::now()));
                Ok(rules)
            }
            Err(e) => match cached {
                Some((rules, _)) => {
                    tracing::warn!(error = %e, "instrument refresh failed; using the cached rules");
                    Ok(rules)
                }
                None => Err(anyhow::anyhow!("instruments-info for {symbol}: {e}")),
            },
        }
    }

    /// Fetch these symbols now (at start-up), so the first signal finds them cached.
    pub async fn warm(&self, symbols: &[String]) {
        for symbol in symbols {
            if let Err(e) = self.lot_rules(symbol).await {
                tracing::warn!(symbol, error = %e, "could not pre-load instrument rules");
            }
        }
    }
}
