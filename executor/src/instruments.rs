//! Instrument rules per symbol from /v5/market/instruments-info, fetched once and refreshed every few
//! minutes, so no signal waits for an instrument fetch.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use humbex_bybit::BybitRest;
use tokio::sync::Mutex;

use crate::trade::rules::InstrumentRules;

const REFRESH_AFTER: Duration = Duration::from_secs(600);

/// Why a symbol's rules are not at hand: classified by what to do next.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The exchange does not list the symbol (with `SYMBOLS=*` an alert may name anything): skip
    /// the order with a reason; asking again will not help.
    #[error("the exchange does not list {0} as a linear contract")]
    NotListed(String),
    /// instruments-info could not be read and nothing is cached: retry the signal later.
    #[error("instruments-info for {symbol}: {message}")]
    Unavailable { symbol: String, message: String },
}

pub struct InstrumentCache {
    rest: BybitRest,
    rules: Mutex<HashMap<String, (InstrumentRules, Instant)>>,
}

impl InstrumentCache {
    pub fn new(rest: BybitRest) -> Self {
        InstrumentCache {
            rest,
            rules: Mutex::new(HashMap::new()),
        }
    }

    /// The symbol's rules; a stale entry is still served if the refresh fails.
    #[tracing::instrument(skip(self))]
    pub async fn rules(&self, symbol: &str) -> Result<InstrumentRules, RulesError> {
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
                    .ok_or_else(|| RulesError::NotListed(symbol.to_owned()))?;
                let rules = InstrumentRules::from_info(&info);
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
                None => Err(RulesError::Unavailable {
                    symbol: symbol.to_owned(),
                    message: e.to_string(),
                }),
            },
        }
    }

    /// Fetch these symbols now (at start-up), so the first signal finds them cached.
    pub async fn warm(&self, symbols: &[String]) {
        for symbol in symbols {
            if let Err(e) = self.rules(symbol).await {
                tracing::warn!(symbol, error = %e, "could not pre-load instrument rules");
            }
        }
    }
}
