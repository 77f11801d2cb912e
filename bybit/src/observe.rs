//! A hook that sees every REST request the client makes: which endpoint, how long it took, and
//! how it failed, if it did. HUMBEX's executor records these as metrics; the client itself keeps
//! no numbers.

use std::time::Duration;

/// How a request failed, before it was classified into a [`crate::BybitError`] (which keeps only
/// what to do next): the raw retCode, an HTTP status without one, or no answer at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFailure {
    RetCode(i64),
    HttpStatus(u16),
    Transport,
}

/// Told about each REST request once it has ended. Called on the request's task: keep it cheap.
pub trait RestObserver: std::fmt::Debug + Send + Sync + 'static {
    /// `endpoint` is the request path (such as `/v5/order/create`), one of the client's constants.
    fn request_done(&self, endpoint: &'static str, elapsed: Duration, failure: Option<RequestFailure>);
}

/// The failure of an answer that did not pass: its retCode when the body has one (the same rule
/// as the classification: a retCode wins over the HTTP status), else the status.
pub(crate) fn failure_of(status: u16, body: &str) -> RequestFailure {
    match crate::parse::parse_envelope(body) {
        Ok(envelope) if envelope.ret_code != 0 => RequestFailure::RetCode(envelope.ret_code),
        _ => RequestFailure::HttpStatus(status),
    }
}
