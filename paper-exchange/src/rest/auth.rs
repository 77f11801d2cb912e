//! The X-BAPI-* authentication of private REST requests: key, time window, signature, bound IP.

use poem::http::HeaderMap;

use super::envelope::now_ms;
use crate::bybit_error::BybitError;
use crate::config::AccountSpec;
use crate::exchange::PaperExchange;
use crate::signing;

/// Bybit's default when X-BAPI-RECV-WINDOW is absent.
const DEFAULT_RECV_WINDOW_MS: i64 = 5000;
/// Bybit accepts client clocks at most this far ahead of its own.
const MAX_CLOCK_AHEAD_MS: i64 = 1000;

/// Why a private request was not authenticated.
pub(super) enum AuthFailure {
    MissingHeader(&'static str),
    Refused(BybitError),
}

pub(super) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(super) fn authenticate(
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
