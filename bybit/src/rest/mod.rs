//! [`BybitRest`]: the signed Bybit V5 REST client. One instance (one connection pool) per process,
//! shared by every account; credentials are passed per call. Every method returns the parsed result
//! with the rate-limit headers, or a [`BybitError`] saying what to do next.

use std::fmt::Write as _;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::error::{
    BybitError, TransportFailure, classify_http_status, classify_ret_code, classify_transport,
};
use crate::model::{BybitResponse, RateLimitStatus};
use crate::parse::{self, Envelope, ParseError};
use crate::signing::Credentials;

mod account;
mod market;
mod orders;

pub use account::{
    RET_LEVERAGE_NOT_MODIFIED, RET_MARGIN_MODE_NOT_MODIFIED, RET_POSITION_MODE_NOT_MODIFIED,
    RET_TRADING_STOP_NOT_MODIFIED, trading_stop_body,
};
pub use orders::create_order_body;

pub const DEFAULT_RECV_WINDOW_MS: u64 = 5000;
/// A paginated walk that has not ended after this many pages is a cursor loop, not Bybit.
const MAX_PAGES: usize = 50;
/// Bybit's largest answers (a page of executions or orders) are tens of KiB; anything past this
/// is not Bybit and is not read into memory.
pub const MAX_RESPONSE_BYTES: usize = 2 * 1024 * 1024;
const CATEGORY: &str = "linear";

/// Installs ring as rustls' process-wide crypto provider. reqwest (built with
/// `rustls-no-provider`) and tokio-tungstenite panic without one; calling this more than once is
/// harmless.
pub fn ensure_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[derive(Clone, Debug)]
pub struct BybitRestConfig {
    /// e.g. `https://api.bybit.com` or the paper exchange's `http://127.0.0.1:PORT`; no trailing `/`.
    pub base_url: String,
    pub recv_window_ms: u64,
    pub connect_timeout: Duration,
    /// Whole-request timeout; past it an order create is [`BybitError::Ambiguous`].
    pub request_timeout: Duration,
}

impl BybitRestConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        BybitRestConfig {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            recv_window_ms: DEFAULT_RECV_WINDOW_MS,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Cheap to clone: clones share one connection pool.
#[derive(Clone, Debug)]
pub struct BybitRest {
    http: reqwest::Client,
    base_url: String,
    recv_window: String,
}

impl BybitRest {
    pub fn new(base_url: impl Into<String>) -> Result<BybitRest, BybitError> {
        BybitRest::with_config(BybitRestConfig::new(base_url))
    }

    pub fn with_config(config: BybitRestConfig) -> Result<BybitRest, BybitError> {
        ensure_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            // A redirect would carry a signed request to a host nobody configured.
            .redirect(reqwest::redirect::Policy::none())
            .tls_backend_preconfigured(crate::tls::rest_config())
            .build()
            .map_err(|e| BybitError::InvalidRequest {
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(BybitRest {
            http,
            base_url: config.base_url.trim_end_matches('/').to_string(),
            recv_window: config.recv_window_ms.to_string(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    async fn public_get(&self, path: &str, query: &[(&str, &str)]) -> Result<Answer, BybitError> {
        let query = encode_query(query);
        let request = self.http.get(self.url(path, &query));
        self.execute(request).await
    }

    async fn signed_post(
        &self,
        credentials: &Credentials,
        path: &str,
        body: &Value,
    ) -> Result<Answer, BybitError> {
        let body = body.to_string();
        self.signed(credentials, Method::POST, path, "", Some(&body))
            .await
    }

    async fn signed_get(
        &self,
        credentials: &Credentials,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Answer, BybitError> {
        let query = encode_query(query);
        self.signed(credentials, Method::GET, path, &query, None).await
    }

    /// Signs exactly the bytes that are sent: the query string as it appears in the URL, or the
    /// body string.
    async fn signed(
        &self,
        credentials: &Credentials,
        method: Method,
        path: &str,
        query: &str,
        body: Option<&str>,
    ) -> Result<Answer, BybitError> {
        let timestamp = now_ms().to_string();
        let payload = body.unwrap_or(query);
        let signature = credentials.sign_rest(&timestamp, &self.recv_window, payload);
        let mut request = self
            .http
            .request(method, self.url(path, query))
            .header("X-BAPI-API-KEY", credentials.api_key())
            .header("X-BAPI-TIMESTAMP", timestamp)
            .header("X-BAPI-RECV-WINDOW", &self.recv_window)
            .header("X-BAPI-SIGN", signature);
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        self.execute(request).await
    }

    fn url(&self, path: &str, query: &str) -> String {
        if query.is_empty() {
            format!("{}{}", self.base_url, path)
        } else {
            format!("{}{}?{}", self.base_url, path, query)
        }
    }

    async fn execute(&self, request: reqwest::RequestBuilder) -> Result<Answer, BybitError> {
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let rate_limit = rate_limit_status(response.headers());
        let body = read_capped(response, MAX_RESPONSE_BYTES).await?;
        let answer = interpret(status, &body, rate_limit, now_ms());
        if let Err(error) = &answer {
            tracing::debug!(%error, "Bybit request failed");
        }
        answer
    }
}

/// A well-formed envelope with `retCode == 0`.
struct Answer {
    envelope: Envelope,
    rate_limit: RateLimitStatus,
}

fn decode<T>(
    answer: Answer,
    parse_result: impl FnOnce(Value) -> Result<T, ParseError>,
) -> Result<BybitResponse<T>, BybitError> {
    let Answer { envelope, rate_limit } = answer;
    // retCode 0 but a result we cannot read: the request did take effect, we just cannot tell how.
    let value = parse_result(envelope.result).map_err(|e| BybitError::Ambiguous {
        reason: e.to_string(),
    })?;
    Ok(BybitResponse {
        value,
        rate_limit,
        server_time_ms: envelope.time,
    })
}

/// Turns an HTTP answer into an envelope or a classified error. A retCode, when the body has one,
/// wins over the HTTP status because it is more specific.
fn interpret(
    status: StatusCode,
    body: &str,
    rate_limit: RateLimitStatus,
    now_ms: i64,
) -> Result<Answer, BybitError> {
    match (parse::parse_envelope(body), status.is_success()) {
        (Ok(envelope), _) if envelope.ret_code != 0 => Err(classify_ret_code(
            envelope.ret_code,
            &envelope.ret_msg,
            &rate_limit,
            now_ms,
        )),
        (Ok(envelope), true) => Ok(Answer { envelope, rate_limit }),
        (_, false) => Err(classify_http_status(status.as_u16(), body, &rate_limit, now_ms)),
        (Err(e), true) => Err(BybitError::Ambiguous {
            reason: format!("HTTP {status} with an unreadable body: {e}"),
        }),
    }
}

/// The body, read chunk by chunk and abandoned past `limit` bytes. An over-long answer is
/// [`BybitError::Ambiguous`]: the request was sent and its outcome cannot be read.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<String, BybitError> {
    let too_long = || BybitError::Ambiguous {
        reason: format!("the response body is longer than {limit} bytes"),
    };
    if response.content_length().is_some_and(|len| len > limit as u64) {
        return Err(too_long());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > limit {
            return Err(too_long());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn transport_error(error: reqwest::Error) -> BybitError {
    let failure = if error.is_connect() {
        TransportFailure::ConnectFailed
    } else if error.is_timeout() {
        TransportFailure::TimedOut
    } else if error.is_builder() {
        return BybitError::InvalidRequest {
            reason: error.to_string(),
        };
    } else {
        TransportFailure::BrokenAfterSend
    };
    // reqwest's Display never includes headers, so no key or signature can leak here.
    classify_transport(failure, &error.to_string())
}

pub fn rate_limit_status(headers: &HeaderMap) -> RateLimitStatus {
    fn header<T: std::str::FromStr>(headers: &HeaderMap, name: &str) -> Option<T> {
        headers.get(name)?.to_str().ok()?.trim().parse().ok()
    }
    RateLimitStatus {
        limit: header(headers, "x-bapi-limit"),
        remaining: header(headers, "x-bapi-limit-status"),
        reset_at_ms: header(headers, "x-bapi-limit-reset-timestamp"),
    }
}

/// Builds the query string once; the same text is signed and sent. Values are percent-encoded only
/// where a character would change the query's structure; `%` is kept so cursors pass verbatim.
pub fn encode_query(params: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (key, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(key);
        out.push('=');
        for byte in value.bytes() {
            if byte.is_ascii_alphanumeric() || b"-_.~%,".contains(&byte) {
                out.push(byte as char);
            } else {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn query_strings_are_stable_and_safe() {
        assert_eq!(
            encode_query(&[("category", "linear"), ("symbol", "AVAXUSDT")]),
            "category=linear&symbol=AVAXUSDT"
        );
        assert_eq!(encode_query(&[("cursor", "page%3D1")]), "cursor=page%3D1");
        assert_eq!(encode_query(&[("x", "a&b c")]), "x=a%26b%20c");
        assert_eq!(encode_query(&[]), "");
    }

    #[test]
    fn rate_limit_headers_are_read_case_insensitively() {
        let mut headers = HeaderMap::new();
        headers.insert("X-Bapi-Limit", HeaderValue::from_static("10"));
        headers.insert("X-Bapi-Limit-Status", HeaderValue::from_static("9"));
        headers.insert(
            "X-Bapi-Limit-Reset-Timestamp",
            HeaderValue::from_static("1672738134824"),
        );
        assert_eq!(
            rate_limit_status(&headers),
            RateLimitStatus {
                limit: Some(10),
                remaining: Some(9),
                reset_at_ms: Some(1672738134824)
            }
        );
        assert_eq!(rate_limit_status(&HeaderMap::new()), RateLimitStatus::default());
    }

    #[test]
    fn interpret_prefers_ret_code_then_status() {
        let rl = RateLimitStatus::default();
        let ok = r#"{"retCode":0,"retMsg":"OK","result":{},"retExtInfo":{},"time":1}"#;
        assert!(interpret(StatusCode::OK, ok, rl, 0).is_ok());
        let refused = r#"{"retCode":110007,"retMsg":"ab not enough for new order","result":{},"time":1}"#;
        assert!(matches!(
            interpret(StatusCode::OK, refused, rl, 0),
            Err(BybitError::Rejected { code: 110007, .. })
        ));
        let bad_key = r#"{"retCode":10003,"retMsg":"API key is invalid.","result":{}}"#;
        assert!(matches!(
            interpret(StatusCode::UNAUTHORIZED, bad_key, rl, 0),
            Err(BybitError::KeyUnusable { code: 10003, .. })
        ));
        assert!(matches!(
            interpret(StatusCode::SERVICE_UNAVAILABLE, "upstream down", rl, 0),
            Err(BybitError::Ambiguous { .. })
        ));
        assert!(matches!(
            interpret(StatusCode::OK, "<html>", rl, 0),
            Err(BybitError::Ambiguous { .. })
        ));
        assert!(matches!(
            interpret(StatusCode::TOO_MANY_REQUESTS, "", rl, 0),
            Err(BybitError::RateLimited { .. })
        ));
    }
}
