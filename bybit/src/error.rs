//! [`BybitError`]: every Bybit failure classified by what the caller must do next (give up, disable
//! the key, fetch the existing order, wait, or look the order up because it may exist), and the
//! pure functions that map retCodes, HTTP statuses and transport failures onto it.

use std::time::Duration;

use crate::model::RateLimitStatus;

/// How long to wait after a 10006 / HTTP 429 when Bybit gives no usable reset timestamp
/// (pybit waits 2 s; one window is 1 s).
pub const DEFAULT_RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(1);

/// Bybit asks clients that hit the per-IP limit (HTTP 403 "access too frequent") to stop for at
/// least ten minutes.
pub const IP_RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BybitError {
    /// Definitive refusal: the request was processed and refused (insufficient balance, bad qty,
    /// bad params, reduce-only with no position, ...). Retrying the same request cannot succeed.
    #[error("Bybit rejected the request: {code} {message}")]
    Rejected { code: i64, message: String },

    /// The key itself cannot be used (invalid, bad signature, no permission, IP not allowed,
    /// expired). Mark it unusable; retrying only burns rate limit.
    #[error("API key unusable: {code} {message}")]
    KeyUnusable { code: i64, message: String },

    /// 110072: an order with this orderLinkId already exists; fetch it instead of placing another.
    #[error("orderLinkId already used: {message}")]
    DuplicateOrderLinkId { message: String },

    /// Not processed because of a rate limit (10006, HTTP 429, HTTP 403). Safe to re-send after
    /// `retry_after` (with the same orderLinkId for orders).
    #[error("rate limited; retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },

    /// The request was sent but the outcome is unknown (timeout, connection lost, 5xx, 10016,
    /// unreadable answer). For an order create: the order may or may not exist, so look it up by
    /// orderLinkId before re-sending it under the same id. For reads: just retry.
    #[error("outcome unknown: {reason}")]
    Ambiguous { reason: String },

    /// Failed before Bybit processed anything (could not connect, 10002 timestamp outside the
    /// recv window). Safe to re-send with a fresh timestamp.
    #[error("not sent / not processed: {reason}")]
    Transient { reason: String },

    /// Refused locally before sending (e.g. a malformed orderLinkId); a bug in the caller's input.
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },
}

impl BybitError {
    /// Re-sending the same request (same orderLinkId) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            BybitError::RateLimited { .. } | BybitError::Ambiguous { .. } | BybitError::Transient { .. }
        )
    }

    /// An order create ended with an order that may exist (or certainly exists): look it up by
    /// orderLinkId before doing anything else.
    pub fn requires_order_lookup(&self) -> bool {
        matches!(
            self,
            BybitError::Ambiguous { .. } | BybitError::DuplicateOrderLinkId { .. }
        )
    }

    /// The key must be marked unusable and not used again until the user fixes it.
    pub fn key_unusable(&self) -> bool {
        matches!(self, BybitError::KeyUnusable { .. })
    }

    /// A refusal that is final for this request.
    pub fn is_definitive(&self) -> bool {
        matches!(
            self,
            BybitError::Rejected { .. } | BybitError::KeyUnusable { .. } | BybitError::InvalidRequest { .. }
        )
    }

    /// Minimum wait before a retry, when Bybit says so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            BybitError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// Bybit's retCode (or the HTTP status when no retCode was given), when there is one.
    pub fn code(&self) -> Option<i64> {
        match self {
            BybitError::Rejected { code, .. } | BybitError::KeyUnusable { code, .. } => Some(*code),
            BybitError::DuplicateOrderLinkId { .. } => Some(RET_DUPLICATE_ORDER_LINK_ID),
            _ => None,
        }
    }
}

pub const RET_DUPLICATE_ORDER_LINK_ID: i64 = 110072;

fn retry_after_from(rate_limit: &RateLimitStatus, now_ms: i64, fallback: Duration) -> Duration {
    match rate_limit.reset_at_ms {
        // A reset time far away would be a server/clock oddity; never wait longer than the fallback
        // allows for a per-second window, except for the IP ban where the fallback is long.
        Some(reset) if reset > now_ms => {
            Duration::from_millis((reset - now_ms) as u64).min(fallback.max(Duration::from_secs(5)))
        }
        _ => fallback,
    }
}

/// Maps a non-zero `retCode` (received in a well-formed envelope) to what to do next.
pub fn classify_ret_code(code: i64, message: &str, rate_limit: &RateLimitStatus, now_ms: i64) -> BybitError {
    let message = message.to_string();
    match code {
        // invalid key, bad signature, permission denied, auth failed, IP not allowed, key expired
        10003 | 10004 | 10005 | 10007 | 10010 | 33004 => BybitError::KeyUnusable { code, message },
        RET_DUPLICATE_ORDER_LINK_ID => BybitError::DuplicateOrderLinkId { message },
        // 429 as a retCode is Bybit's system-level protection: not processed, back off.
        10006 | 429 => BybitError::RateLimited {
            retry_after: retry_after_from(rate_limit, now_ms, DEFAULT_RATE_LIMIT_BACKOFF),
        },
        // timestamp / recv window: refused before processing.
        10002 | -1 => BybitError::Transient {
            reason: format!("{code} {message}"),
        },
        // server timeout / internal error / restarting / "order is being processed": may exist.
        10000 | 10016 | 10019 | 110079 => BybitError::Ambiguous {
            reason: format!("{code} {message}"),
        },
        _ => BybitError::Rejected { code, message },
    }
}

/// Maps an HTTP status that came without a usable retCode.
pub fn classify_http_status(
    status: u16,
    body: &str,
    rate_limit: &RateLimitStatus,
    now_ms: i64,
) -> BybitError {
    let snippet: String = body.chars().take(200).collect();
    match status {
        429 => BybitError::RateLimited {
            retry_after: retry_after_from(rate_limit, now_ms, DEFAULT_RATE_LIMIT_BACKOFF),
        },
        403 => BybitError::RateLimited {
            retry_after: IP_RATE_LIMIT_BACKOFF,
        },
        // Bybit answers a key/environment mismatch and malformed auth headers with 401.
        401 => BybitError::KeyUnusable {
            code: 401,
            message: format!("HTTP 401 {snippet}"),
        },
        500..=599 => BybitError::Ambiguous {
            reason: format!("HTTP {status} {snippet}"),
        },
        _ => BybitError::Rejected {
            code: i64::from(status),
            message: format!("HTTP {status} {snippet}"),
        },
    }
}

/// How a request failed below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    /// No connection was established, so nothing was sent.
    ConnectFailed,
    /// The request may have reached Bybit; no answer in time.
    TimedOut,
    /// The connection broke after the request started going out, or the answer was unreadable.
    BrokenAfterSend,
}

pub fn classify_transport(failure: TransportFailure, detail: &str) -> BybitError {
    match failure {
        TransportFailure::ConnectFailed => BybitError::Transient {
            reason: format!("connect failed: {detail}"),
        },
        TransportFailure::TimedOut => BybitError::Ambiguous {
            reason: format!("timed out: {detail}"),
        },
        TransportFailure::BrokenAfterSend => BybitError::Ambiguous {
            reason: format!("connection failed after sending: {detail}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn no_headers() -> RateLimitStatus {
        RateLimitStatus::default()
    }

    #[test]
    fn ret_code_table() {
        use BybitError as E;
        type Expectation = fn(&E) -> bool;
        let cases: &[(i64, Expectation)] = &[
            (10001, |e| matches!(e, E::Rejected { code: 10001, .. })),
            (110007, |e| matches!(e, E::Rejected { code: 110007, .. })),
            (110017, |e| matches!(e, E::Rejected { code: 110017, .. })),
            (110094, |e| matches!(e, E::Rejected { .. })),
            (10003, |e| matches!(e, E::KeyUnusable { code: 10003, .. })),
            (10004, |e| matches!(e, E::KeyUnusable { code: 10004, .. })),
            (10005, |e| matches!(e, E::KeyUnusable { code: 10005, .. })),
            (10010, |e| matches!(e, E::KeyUnusable { code: 10010, .. })),
            (33004, |e| matches!(e, E::KeyUnusable { .. })),
            (110072, |e| matches!(e, E::DuplicateOrderLinkId { .. })),
            (10006, |e| matches!(e, E::RateLimited { .. })),
            (429, |e| matches!(e, E::RateLimited { .. })),
            (10002, |e| matches!(e, E::Transient { .. })),
            (10016, |e| matches!(e, E::Ambiguous { .. })),
            (10000, |e| matches!(e, E::Ambiguous { .. })),
            (110079, |e| matches!(e, E::Ambiguous { .. })),
        ];
        for (code, expected) in cases {
            let err = classify_ret_code(*code, "msg", &no_headers(), NOW);
            assert!(expected(&err), "{code} classified as {err:?}");
        }
    }

    #[test]
    fn what_to_do_next_flags() {
        let rejected = classify_ret_code(110007, "ab not enough", &no_headers(), NOW);
        assert!(!rejected.is_retryable() && rejected.is_definitive());
        assert!(!rejected.requires_order_lookup());

        let key = classify_ret_code(10010, "Unmatched IP", &no_headers(), NOW);
        assert!(key.key_unusable() && !key.is_retryable());

        let dup = classify_ret_code(110072, "OrderLinkedID is duplicate", &no_headers(), NOW);
        assert!(dup.requires_order_lookup() && !dup.is_retryable());
        assert_eq!(dup.code(), Some(110072));

        let ambiguous = classify_http_status(503, "oops", &no_headers(), NOW);
        assert!(ambiguous.requires_order_lookup() && ambiguous.is_retryable());

        let transient = classify_transport(TransportFailure::ConnectFailed, "refused");
        assert!(transient.is_retryable() && !transient.requires_order_lookup());
    }

    #[test]
    fn rate_limit_waits_until_the_reset_header() {
        let headers = RateLimitStatus {
            limit: Some(10),
            remaining: Some(0),
            reset_at_ms: Some(NOW + 400),
        };
        let err = classify_ret_code(10006, "Too many visits!", &headers, NOW);
        assert_eq!(err.retry_after(), Some(Duration::from_millis(400)));
        // A reset time in the past (clock skew) falls back to the default.
        let stale = RateLimitStatus {
            reset_at_ms: Some(NOW - 10),
            ..headers
        };
        assert_eq!(
            classify_ret_code(10006, "", &stale, NOW).retry_after(),
            Some(DEFAULT_RATE_LIMIT_BACKOFF)
        );
        // Never absurdly long for a per-second window.
        let far = RateLimitStatus {
            reset_at_ms: Some(NOW + 3_600_000),
            ..headers
        };
        assert!(classify_ret_code(10006, "", &far, NOW).retry_after().unwrap() <= Duration::from_secs(5));
    }

    #[test]
    fn http_status_table() {
        assert!(matches!(
            classify_http_status(429, "", &no_headers(), NOW),
            BybitError::RateLimited { .. }
        ));
        assert_eq!(
            classify_http_status(403, "access too frequent", &no_headers(), NOW).retry_after(),
            Some(IP_RATE_LIMIT_BACKOFF)
        );
        assert!(classify_http_status(401, "", &no_headers(), NOW).key_unusable());
        for status in [500, 502, 503, 504] {
            assert!(matches!(
                classify_http_status(status, "", &no_headers(), NOW),
                BybitError::Ambiguous { .. }
            ));
        }
        assert!(matches!(
            classify_http_status(404, "", &no_headers(), NOW),
            BybitError::Rejected { code: 404, .. }
        ));
    }

    #[test]
    fn transport_table() {
        assert!(matches!(
            classify_transport(TransportFailure::ConnectFailed, ""),
            BybitError::Transient { .. }
        ));
        assert!(matches!(
            classify_transport(TransportFailure::TimedOut, ""),
            BybitError::Ambiguous { .. }
        ));
        assert!(matches!(
            classify_transport(TransportFailure::BrokenAfterSend, ""),
            BybitError::Ambiguous { .. }
        ));
    }
}
