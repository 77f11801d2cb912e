//! Bybit's business errors: a retCode and retMsg answered inside the normal envelope.

/// A refusal in Bybit's terms. HTTP status stays 200 for these, as on Bybit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("retCode {code}: {msg}")]
pub struct BybitError {
    pub code: i64,
    pub msg: String,
}

impl BybitError {
    pub fn new(code: i64, msg: impl Into<String>) -> BybitError {
        BybitError {
            code,
            msg: msg.into(),
        }
    }
    /// 10001: request parameter error.
    pub fn params(msg: impl Into<String>) -> BybitError {
        BybitError::new(10001, msg)
    }
    /// 10003: unknown key (on Bybit usually a key from another environment).
    pub fn invalid_api_key() -> BybitError {
        BybitError::new(10003, "API key is invalid.")
    }
}
