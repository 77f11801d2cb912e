//! Bybit's response envelope `{retCode, retMsg, result, retExtInfo, time}` with its Timenow and
//! X-Bapi-Limit* headers, and the plain-text answers of failures in front of the API.

use chrono::Utc;
use poem::Response;
use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::bybit_error::BybitError;
use crate::engine::RateLimitStatus;

/// The read endpoints' documented limit, reported in the headers (not enforced).
const READ_LIMIT_PER_SECOND: u32 = 50;

pub(super) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// The Bybit envelope, always with `time`, plus the X-Bapi-Limit* headers when given.
pub(super) fn envelope(
    ret_code: i64,
    ret_msg: &str,
    result: Value,
    limit: Option<RateLimitStatus>,
) -> Response {
    let now = now_ms();
    let body = json!({
        "retCode": ret_code,
        "retMsg": ret_msg,
        "result": result,
        "retExtInfo": {},
        "time": now,
    });
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .content_type("application/json")
        .header("Timenow", now.to_string());
    if let Some(limit) = limit {
        response = response
            .header("X-Bapi-Limit", limit.limit.to_string())
            .header("X-Bapi-Limit-Status", limit.remaining.to_string())
            .header("X-Bapi-Limit-Reset-Timestamp", limit.reset_at_ms.to_string());
    }
    response.body(body.to_string())
}

pub(super) fn ok(result: Value, limit: Option<RateLimitStatus>) -> Response {
    envelope(0, "OK", result, limit)
}

pub(super) fn bybit_error(error: &BybitError, limit: Option<RateLimitStatus>) -> Response {
    envelope(error.code, &error.msg, json!({}), limit)
}

pub(super) fn read_limit() -> RateLimitStatus {
    RateLimitStatus {
        allowed: true,
        limit: READ_LIMIT_PER_SECOND,
        remaining: READ_LIMIT_PER_SECOND - 1,
        reset_at_ms: now_ms(),
    }
}

/// The limit reported by the endpoints Bybit allows 10 requests a second (cancel, set-leverage,
/// query-api); like the read limit, reported but not enforced.
pub(super) fn ten_per_second_limit() -> RateLimitStatus {
    RateLimitStatus {
        limit: 10,
        remaining: 9,
        ..read_limit()
    }
}

pub(super) fn plain_status(status: u16, text: &str) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("text/plain")
        .body(text.to_string())
}
