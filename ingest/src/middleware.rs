//! Cross-cutting HTTP behaviour: one log line per request, security headers, the JSON error
//! envelope for framework errors, `Allow` on 405 answers, and the per-address limit on failed
//! authentications (every 401 counts; an address over budget gets 429 before any route runs), and
//! the webhook metrics (`humbex_webhooks_total`, `humbex_webhook_duration_seconds`).

use std::sync::Arc;
use std::time::Instant;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

use crate::state::AppState;

/// Content-Security-Policy for JSON responses: nothing may load, nothing may frame.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";
/// Path templates of the OpenAPI document with their methods, for `Allow` headers.
pub struct RouteTable {
    routes: Vec<(Vec<String>, Vec<String>)>,
}

impl RouteTable {
    pub fn from_spec(spec_json: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(spec_json).expect("our own spec is JSON");
        let mut routes = Vec::new();
        if let Some(paths) = spec["paths"].as_object() {
            for (path, ops) in paths {
                let segments = path.trim_matches('/').split('/').map(str::to_owned).collect();
                let mut methods: Vec<String> = ops
                    .as_object()
                    .map(|o| o.keys().map(|m| m.to_ascii_uppercase()).collect())
                    .unwrap_or_default();
                methods.sort();
                routes.push((segments, methods));
            }
        }
        RouteTable { routes }
    }

    /// The methods allowed on a concrete path, if it matches a template.
    pub fn allowed(&self, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.routes
            .iter()
            .find(|(template, _)| {
                template.len() == segments.len()
                    && template
                        .iter()
                        .zip(&segments)
                        .all(|(t, s)| (t.starts_with('{') && t.ends_with('}')) || t == s)
            })
            .map(|(_, methods)| methods.join(", "))
    }
}

/// Wraps the whole app: logging span, error envelope, headers.
pub async fn around<E: Endpoint>(
    next: Arc<E>,
    routes: Arc<RouteTable>,
    state: Arc<AppState>,
    docs: Arc<crate::docs::DocsPage>,
    req: Request,
) -> poem::Result<Response> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span =
        tracing::info_span!("request", method = %method, path = %path, signal_id = tracing::field::Empty);
    let is_docs = path == "/docs" || path.starts_with("/docs/");
    let is_console = path == "/console" || path.starts_with("/console/");
    let source = crate::client_ip::client_ip(&req, &state.ip_policy.trusted_proxies);
    let unreadable = match &source {
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    let source = source
        .and_then(Result::ok)
        .filter(|ip| !state.auth_limit_exempt.contains(ip));
    let blocked = source.and_then(|ip| state.rate_limits.auth_failures_exhausted(ip));
    let mut response = if let Some(message) = unreadable {
        span.in_scope(
            || tracing::info!(%message, "refused: X-Forwarded-For from a trusted proxy is unreadable"),
        );
        poem::web::Json(serde_json::json!({ "error": "invalid_forwarded_for", "message": message }))
            .with_status(StatusCode::BAD_REQUEST)
            .into_response()
    } else if let Some(wait) = blocked {
        span.in_scope(
            || tracing::info!(source = ?source, "too many failed authentications from this address"),
        );
        rate_limited(
            wait,
            "too many failed authentications from this address; retry after the Retry-After delay",
        )
    } else {
        match next.call(req).instrument(span.clone()).await {
            Ok(resp) => resp.into_response(),
            Err(err) if err.is_from_response() => err.into_response(),
            Err(err) => crate::error::framework_error_to_json(err).await,
        }
    };
    let status = response.status();
    // Here rather than in the handlers, so refusals made before a route runs (the failed-auth
    // budget, an unreadable X-Forwarded-For, a panic's 500) are counted too. Two atomic additions.
    if method == Method::POST
        && let Some(route) = humbex_shared::metrics::WebhookRoute::of_path(&path)
    {
        humbex_shared::metrics::metrics().webhook(route, status.as_u16(), started.elapsed());
    }
    if status == StatusCode::UNAUTHORIZED
        && let Some(ip) = source
    {
        // The answer is already 401; the exhausted budget shows on the address's next request.
        state.rate_limits.auth_failed(ip);
    }
    if status == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allow) = routes.allowed(&path)
        && let Ok(value) = HeaderValue::from_str(&allow)
    {
        response.headers_mut().insert(header::ALLOW, value);
    }
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The console's forms need the browser's Origin header on their posts (a page under
    // no-referrer posts with `Origin: null`); same-origin still sends nothing to other sites.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static(if is_console { "same-origin" } else { "no-referrer" }),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        if is_docs {
            docs.csp()
        } else if is_console {
            HeaderValue::from_static(crate::console::CSP)
        } else {
            HeaderValue::from_static(API_CSP)
        },
    );
    let latency_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    // Health probes arrive every few seconds from orchestrators; they would drown the log.
    let probe = method == Method::GET && (path == "/health" || path == "/ready") && status.is_success();
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), latency_ms, "request");
        } else if probe {
            tracing::debug!(status = status.as_u16(), latency_ms, "request");
        } else {
            tracing::info!(status = status.as_u16(), latency_ms, "request");
        }
    });
    Ok(response)
}

/// A 429 with `Retry-After` and the JSON error envelope.
pub fn rate_limited(wait: std::time::Duration, message: &str) -> Response {
    let seconds = crate::rate_limit::retry_after_secs(wait);
    poem::web::Json(serde_json::json!({ "error": "rate_limited", "message": message }))
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .with_header(header::RETRY_AFTER, seconds)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::RouteTable;

    #[test]
    fn allow_header_comes_from_the_spec() {
        let table = RouteTable::from_spec(&crate::api::spec_json());
        assert_eq!(table.allowed("/webhook").as_deref(), Some("POST"));
        assert_eq!(table.allowed("/admin/users").as_deref(), Some("GET, POST"));
        assert_eq!(
            table
                .allowed("/admin/users/0193a000-0000-7000-8000-000000000000")
                .as_deref(),
            Some("GET")
        );
        assert_eq!(table.allowed("/nowhere"), None);
    }
}
