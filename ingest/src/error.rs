//! The one error shape of the HTTP API, `{"error": code, "message": sentence}`, and the conversion
//! of every framework error (bad path parameter, missing auth, unknown route) into it.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::Object;

/// Every HTTP error: a stable snake_case code and one sentence naming the field or the reason.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct ErrorBody {
    /// Stable, machine-readable code, e.g. `invalid_field`, `unauthorized`, `not_found`.
    pub error: String,
    /// One human sentence naming the field or the reason.
    pub message: String,
}

impl ErrorBody {
    pub fn new(error: &str, message: impl Into<String>) -> poem_openapi::payload::Json<ErrorBody> {
        poem_openapi::payload::Json(ErrorBody {
            error: error.to_owned(),
            message: message.into(),
        })
    }
}

impl poem_openapi::types::Example for ErrorBody {
    fn example() -> Self {
        ErrorBody {
            error: "invalid_field".into(),
            message: "quantity: must be greater than zero".into(),
        }
    }
}

/// Stable code for a status produced outside our handlers.
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "invalid_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal_error",
        _ => "error",
    }
}

/// Turn any framework error into the JSON envelope. Server errors never echo their cause.
pub async fn framework_error_to_json(err: poem::Error) -> Response {
    let status = err.status();
    let message = match status {
        StatusCode::UNAUTHORIZED => "a valid Authorization: Bearer token is required".to_owned(),
        StatusCode::NOT_FOUND => "no such resource".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed on this path".to_owned(),
        s if s.is_server_error() => {
            tracing::error!(error = %err, "unhandled server error");
            "the server failed to handle the request".to_owned()
        }
        _ => err.to_string(),
    };
    let code = code_for(status);
    poem::web::Json(serde_json::json!({ "error": code, "message": message }))
        .with_status(status)
        .into_response()
}
