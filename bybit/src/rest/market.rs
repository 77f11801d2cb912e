//! Public market data: server time, instruments (one, or every linear one page by page, as typed
//! [`InstrumentRules`]) and tickers.

use super::{BybitRest, CATEGORY, decode};
use crate::error::BybitError;
use crate::model::{BybitResponse, InstrumentInfo, InstrumentRules, ServerTime, Ticker};
use crate::parse::{self, Page};

/// Bybit lists more than 500 linear symbols; 1000 a page (its maximum) keeps the walk short.
const INSTRUMENTS_PAGE_LIMIT: &str = "1000";
/// A walk that has not ended after this many pages is not Bybit's answer (a cursor loop).
const MAX_INSTRUMENT_PAGES: usize = 50;

impl BybitRest {
    /// `GET /v5/market/time`.
    #[tracing::instrument(skip_all)]
    pub async fn server_time(&self) -> Result<BybitResponse<ServerTime>, BybitError> {
        let envelope = self.public_get("/v5/market/time", &[]).await?;
        decode(envelope, parse::parse_server_time)
    }

    /// `GET /v5/market/instruments-info` for one linear symbol; `None` if Bybit does not list it.
    #[tracing::instrument(skip(self))]
    pub async fn instruments_info(
        &self,
        symbol: &str,
    ) -> Result<BybitResponse<Option<InstrumentInfo>>, BybitError> {
        let envelope = self
            .public_get(
                "/v5/market/instruments-info",
                &[("category", CATEGORY), ("symbol", symbol)],
            )
            .await?;
        decode(envelope, |r| {
            parse::parse_instruments(r).map(|page| page.items.into_iter().find(|i| i.symbol == symbol))
        })
    }

    /// The typed rules of one linear symbol; `None` if Bybit does not list it.
    #[tracing::instrument(skip(self))]
    pub async fn instrument_rules(
        &self,
        symbol: &str,
    ) -> Result<BybitResponse<Option<InstrumentRules>>, BybitError> {
        let answer = self.instruments_info(symbol).await?;
        Ok(BybitResponse {
            value: answer.value.as_ref().map(InstrumentRules::from),
            rate_limit: answer.rate_limit,
            server_time_ms: answer.server_time_ms,
        })
    }

    /// One page of every linear instrument in `Trading` status; pass the previous page's
    /// `next_page_cursor` (verbatim) for the next one.
    #[tracing::instrument(skip(self))]
    pub async fn instruments_page(
        &self,
        cursor: Option<&str>,
    ) -> Result<BybitResponse<Page<InstrumentInfo>>, BybitError> {
        let mut query = vec![("category", CATEGORY), ("limit", INSTRUMENTS_PAGE_LIMIT)];
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor));
        }
        let envelope = self.public_get("/v5/market/instruments-info", &query).await?;
        decode(envelope, parse::parse_instruments)
    }

    /// Every linear instrument's rules, following the cursor to the last page (for `SYMBOLS=*`
    /// and the periodic refresh).
    #[tracing::instrument(skip(self))]
    pub async fn linear_instrument_rules(&self) -> Result<Vec<InstrumentRules>, BybitError> {
        let mut rules = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_INSTRUMENT_PAGES {
            let page = self.instruments_page(cursor.as_deref()).await?.value;
            rules.extend(page.items.iter().map(InstrumentRules::from));
            match page.next_page_cursor {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => return Ok(rules),
            }
        }
        Err(BybitError::Ambiguous {
            reason: format!("instruments-info did not end after {MAX_INSTRUMENT_PAGES} pages"),
        })
    }

    /// `GET /v5/market/tickers` for one linear symbol; `None` if Bybit does not list it.
    #[tracing::instrument(skip(self))]
    pub async fn ticker(&self, symbol: &str) -> Result<BybitResponse<Option<Ticker>>, BybitError> {
        let envelope = self
            .public_get(
                "/v5/market/tickers",
                &[("category", CATEGORY), ("symbol", symbol)],
            )
            .await?;
        decode(envelope, |r| {
            parse::parse_tickers(r).map(|list| list.into_iter().find(|t| t.symbol == symbol))
        })
    }

    /// `GET /v5/market/tickers` for every linear symbol (last and mark price of each).
    #[tracing::instrument(skip(self))]
    pub async fn tickers(&self) -> Result<BybitResponse<Vec<Ticker>>, BybitError> {
        let envelope = self
            .public_get("/v5/market/tickers", &[("category", CATEGORY)])
            .await?;
        decode(envelope, parse::parse_tickers)
    }
}
