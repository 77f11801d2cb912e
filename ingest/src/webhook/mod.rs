//! POST /webhook (signed) and POST /webhook/tradingview (token only): authenticate, validate,
//! de-duplicate, store and announce a signal, and answer within milliseconds.

pub mod body;
pub mod group;
pub mod schema;
pub mod signature;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use humbex_shared::domain::SignalSource;
use humbex_shared::token::{TokenKind, WebhookToken};
use poem::web::Data;
use poem::{Request, RequestBody};
use poem_openapi::param::Header;
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Object, OpenApi};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::ErrorBody;
use crate::state::AppState;
use crate::tags::ApiTags;
use schema::SignalRequest;
use signature::{SignatureError, StandardHeaders};
use store::{IdempotencyKey, NewSignal, Stored, Submission};

/// Largest signal body accepted; TradingView messages and signed requests are far smaller.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything the database part of a webhook may take, so the answer always beats TradingView's
/// 3-second limit. Each wait inside (pool slot, connect) is bounded separately as well.
const DB_BUDGET: Duration = Duration::from_secs(2);

/// The answer to an accepted or duplicate signal.
#[derive(Debug, Object)]
#[oai(example)]
pub struct WebhookAccepted {
    /// The stored signal (for a duplicate: the original's).
    pub signal_id: Uuid,
    /// received, processing, done or rejected.
    pub status: String,
    /// True when this request repeated one already stored.
    pub duplicate: bool,
}

impl poem_openapi::types::Example for WebhookAccepted {
    fn example() -> Self {
        WebhookAccepted {
            signal_id: Uuid::nil(),
            status: "received".into(),
            duplicate: false,
        }
    }
}

#[derive(ApiResponse)]
pub enum WebhookResponse {
    /// A new signal was stored and announced to the executor.
    #[oai(status = 202)]
    Accepted(Json<WebhookAccepted>),
    /// The same signal was already stored; nothing new was done.
    #[oai(status = 200)]
    Duplicate(Json<WebhookAccepted>),
    /// The body or a header is malformed, or the signal is stale; the message names the field.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or wrong signature, or an unknown, revoked or malformed token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The token's owner may not trade now (no active subscription), or the source address is not
    /// allowed. A refused signal is kept as rejected for the audit trail.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// The body is larger than 64 KiB.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The body is neither application/json nor text/plain.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// Too many failed authentications from this address, requests with this token, signals for
    /// this user or strategy, or requests with unknown tokens (all sources together) in the last
    /// minute; nothing was stored. Retry after `Retry-After`.
    #[oai(status = 429)]
    TooManyRequests(
        Json<ErrorBody>,
        /// Seconds to wait before the next attempt.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// The database could not store the signal; nothing was stored, and a resend is safe.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

/// The raw request body (at most 64 KiB) and its content type, read before anything is parsed so
/// that the signature covers exactly the bytes that were sent.
pub struct WebhookBody {
    content_type: Option<String>,
    bytes: Result<Bytes, BodyReadError>,
}

enum BodyReadError {
    TooLarge,
    Unreadable,
}

impl<'a> ApiExtractor<'a> for WebhookBody {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        SignalRequest::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        let schema: MetaSchemaRef = SignalRequest::schema_ref();
        Some(MetaRequest {
            description: Some(
                "A signal. TradingView sends JSON as text/plain; both content types are parsed as JSON.",
            ),
            content: vec![
                MetaMediaType {
                    content_type: "application/json",
                    schema: schema.clone(),
                },
                MetaMediaType {
                    content_type: "text/plain",
                    schema,
                },
            ],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let content_type = request.content_type().map(str::to_owned);
        let bytes = match body.take() {
            Ok(b) => b.into_bytes_limit(MAX_BODY_BYTES).await.map_err(|e| match e {
                poem::error::ReadBodyError::PayloadTooLarge => BodyReadError::TooLarge,
                _ => BodyReadError::Unreadable,
            }),
            Err(_) => Err(BodyReadError::Unreadable),
        };
        Ok(WebhookBody { content_type, bytes })
    }
}

impl WebhookBody {
    /// The body bytes, or the answer for a body we will not read.
    fn checked(&self) -> Result<&[u8], WebhookResponse> {
        if let Some(ct) = &self.content_type {
            let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if essence != "application/json" && essence != "text/plain" {
                return Err(WebhookResponse::UnsupportedMediaType(ErrorBody::new(
                    "unsupported_media_type",
                    format!("Content-Type {essence:?} is not application/json or text/plain"),
                )));
            }
        }
        match &self.bytes {
            Ok(b) => Ok(b),
            Err(BodyReadError::TooLarge) => Err(WebhookResponse::PayloadTooLarge(ErrorBody::new(
                "payload_too_large",
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            ))),
            Err(BodyReadError::Unreadable) => Err(WebhookResponse::BadRequest(ErrorBody::new(
                "invalid_body",
                "the body could not be read",
            ))),
        }
    }
}

pub struct WebhookApi;

#[OpenApi(tag = "ApiTags::Webhooks")]
impl WebhookApi {
    /// Submit a signed signal.
    ///
    /// Sign the raw body with HMAC-SHA256 keyed by TRADINGVIEW_SECRET and send the hex digest in
    /// `X-Signature` (what `openssl dgst -sha256 -hmac "$TRADINGVIEW_SECRET"` prints), or use the
    /// Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`), in which
    /// case `webhook-id` is the idempotency key unless the body has an `id`. The signature is checked
    /// on the raw bytes before anything else; a bad one costs no database query.
    #[oai(path = "/webhook", method = "post", operation_id = "post_signed_webhook")]
    async fn signed(
        &self,
        state: Data<&Arc<AppState>>,
        body: WebhookBody,
        /// Hex HMAC-SHA256 of the raw body, keyed with TRADINGVIEW_SECRET.
        #[oai(name = "X-Signature")]
        x_signature: Header<Option<String>>,
        /// Standard Webhooks message id: `[A-Za-z0-9_-]{1,64}`.
        #[oai(name = "webhook-id")]
        webhook_id: Header<Option<String>>,
        /// Standard Webhooks timestamp: unix seconds, within 5 minutes of the server clock.
        #[oai(name = "webhook-timestamp")]
        webhook_timestamp: Header<Option<String>>,
        /// Standard Webhooks signatures: space-separated `v1,<base64>` entries.
        #[oai(name = "webhook-signature")]
        webhook_signature: Header<Option<String>>,
    ) -> WebhookResponse {
        let state = state.0.as_ref();
        let bytes = match body.checked() {
            Ok(b) => b,
            Err(answer) => return answer,
        };
        // Each secret accepted now is tried in turn (two during a rotation); any match passes.
        let mut verified = Err(SignatureError::Missing);
        for secret in state.webhook_secrets() {
            verified = if webhook_signature.0.is_some() {
                signature::verify_standard_webhooks(
                    secret.standard_webhooks_key(),
                    StandardHeaders {
                        id: webhook_id.0.as_deref(),
                        timestamp: webhook_timestamp.0.as_deref(),
                        signature: webhook_signature.0.as_deref(),
                    },
                    bytes,
                    state.now().timestamp(),
                )
                .map(|id| Some(id.to_owned()))
            } else if let Some(sig) = x_signature.0.as_deref() {
                signature::verify_x_signature(secret.x_signature_key(), bytes, sig).map(|()| None)
            } else {
                Err(SignatureError::Missing)
            };
            // Only a mismatch is worth another secret; a malformed or stale request stays refused.
            if !matches!(verified, Err(SignatureError::Mismatch)) {
                break;
            }
        }
        let webhook_id = match verified {
            Ok(id) => id,
            Err(e) => {
                tracing::info!(reason = %e, "webhook signature refused");
                return if e.is_malformed() {
                    WebhookResponse::BadRequest(ErrorBody::new("invalid_header", e.to_string()))
                } else {
                    WebhookResponse::Unauthorized(ErrorBody::new("invalid_signature", e.to_string()))
                };
            }
        };
        accept_signal(state, SignalSource::Signed, bytes, webhook_id).await
    }

    /// Submit a signal from a TradingView alert.
    ///
    /// TradingView cannot sign requests, so the body's `token` authenticates (bearer-token security,
    /// not signature security). JSON sent as text/plain is accepted. When TRADINGVIEW_IP_ALLOWLIST is
    /// on, only TradingView's published addresses (or the configured ones) may post; X-Forwarded-For
    /// is read only from TRUSTED_PROXIES.
    #[oai(
        path = "/webhook/tradingview",
        method = "post",
        operation_id = "post_tradingview_webhook"
    )]
    async fn tradingview(
        &self,
        state: Data<&Arc<AppState>>,
        request: &Request,
        body: WebhookBody,
    ) -> WebhookResponse {
        let state = state.0.as_ref();
        if let Some(allowlist) = &state.ip_policy.allowlist {
            // An unreadable X-Forwarded-For was already refused by the middleware.
            let source =
                crate::client_ip::client_ip(request, &state.ip_policy.trusted_proxies).and_then(Result::ok);
            if !source.is_some_and(|ip| allowlist.contains(&ip)) {
                tracing::info!(source = ?source, "tradingview webhook from a source outside the allowlist");
                return WebhookResponse::Forbidden(ErrorBody::new(
                    "source_not_allowed",
                    "this source address may not post TradingView alerts",
                ));
            }
        }
        let bytes = match body.checked() {
            Ok(b) => b,
            Err(answer) => return answer,
        };
        accept_signal(state, SignalSource::Tradingview, bytes, None).await
    }
}

/// The shared second half of both routes: parse, authenticate the token, store.
async fn accept_signal(
    state: &AppState,
    source: SignalSource,
    bytes: &[u8],
    webhook_id: Option<String>,
) -> WebhookResponse {
    let parsed = match body::parse_signal(bytes, &state.symbols, state.now()) {
        Ok(p) => p,
        Err(e) => return WebhookResponse::BadRequest(ErrorBody::new(e.code(), e.to_string())),
    };
    let token = match parsed.token.as_deref().map(WebhookToken::parse) {
        Some(Ok(t)) if t.kind() != TokenKind::Admin => t,
        // Refused from its shape and checksum alone: no database lookup for junk.
        _ => return unknown_token(),
    };
    let digest = token.digest();
    // Both budgets are checked before any database query, so a flood costs no connection.
    if let Err(wait) = state.rate_limits.token_requests.take(&digest) {
        tracing::info!(token = %token.display_prefix(), "webhook token over its request budget");
        return too_many(wait, "too many requests with this token in the last minute");
    }
    let owner = state.rate_limits.owner_of(&digest);
    if owner.is_none()
        && let Some(wait) = state.rate_limits.unknown_tokens_exhausted()
    {
        tracing::info!("lookups of unknown webhook tokens over their budget");
        return too_many(
            wait,
            "too many requests with unknown tokens in the last minute; a token that has worked before is not affected",
        );
    }
    if let Some(wait) = owner.and_then(|o| state.rate_limits.owner_signals.exhausted(&o)) {
        tracing::info!(token = %token.display_prefix(), "signal budget of the token's owner exhausted");
        return too_many(
            wait,
            "too many signals for this user or strategy in the last minute",
        );
    }
    let key = match (&parsed.client_id, webhook_id) {
        (Some(id), _) => IdempotencyKey::Client(id.clone()),
        (None, Some(id)) => IdempotencyKey::WebhookId(id),
        (None, None) => IdempotencyKey::BodyHash(hex::encode(Sha256::digest(bytes))),
    };
    let text = std::str::from_utf8(bytes).unwrap_or_default();
    let raw_body = redact_token(text, &token);
    let quantity = parsed.quantity.map(|q| q.get());
    let price = parsed.price.map(|p| p.get());

    let signal = Arc::new(NewSignal {
        source,
        action: parsed.action.as_str(),
        symbol: parsed.symbol.as_str().to_owned(),
        quantity,
        client_id: parsed.client_id,
        price,
        signal_time: parsed.signal_time,
        comment: parsed.comment,
        raw_body,
        key,
        // A v1 body stays NULL, so its row and its executor path are what they were.
        trade: (!parsed.trade.is_plain()).then_some(tokio_postgres::types::Json(parsed.trade)),
    });
    let work = async {
        let submission = state.signals.submit(token.kind(), digest, signal.clone()).await?;
        let stored = match submission {
            Submission::New { id, owner } => {
                count_signal(state, digest, owner.id());
                Stored::New { id }
            }
            Submission::UnknownToken => {
                state.rate_limits.unknown_token_looked_up();
                return Ok::<_, anyhow::Error>(unknown_token());
            }
            Submission::Refused { owner, reason } => {
                let client = state.pool.get().await?;
                let id = store::insert_rejected(&client, owner, &signal, &reason).await?;
                tracing::Span::current().record("signal_id", tracing::field::display(id));
                return Ok(WebhookResponse::Forbidden(ErrorBody::new(
                    "subscription_inactive",
                    format!("{reason}; signal {id} was kept as rejected"),
                )));
            }
            Submission::KeyTaken { owner } => {
                let client = state.pool.get().await?;
                let window = dedupe_window(state.dedupe_window, &signal).as_secs_f64();
                let stored = store::insert_signal(&client, owner, &signal, window).await?;
                if matches!(stored, Stored::New { .. }) {
                    count_signal(state, digest, owner.id());
                }
                stored
            }
        };
        Ok(match stored {
            Stored::New { id } => {
                tracing::Span::current().record("signal_id", tracing::field::display(id));
                WebhookResponse::Accepted(Json(WebhookAccepted {
                    signal_id: id,
                    status: humbex_shared::domain::signal_status::RECEIVED.into(),
                    duplicate: false,
                }))
            }
            Stored::Duplicate { id, status } => {
                tracing::Span::current().record("signal_id", tracing::field::display(id));
                WebhookResponse::Duplicate(Json(WebhookAccepted {
                    signal_id: id,
                    status,
                    duplicate: true,
                }))
            }
        })
    };
    match tokio::time::timeout(DB_BUDGET, work).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => {
            tracing::warn!(error = ?e, "signal not stored: database unavailable");
            unavailable()
        }
        Err(_) => {
            tracing::warn!("signal not stored: database did not answer in time");
            unavailable()
        }
    }
}

/// How long a body-hash key holds off a copy of `signal`. A body with a `timestamp` is accepted
/// for as long as that timestamp is within the tolerance either side of our clock, so its copies
/// must be caught for that whole span: from a first arrival at `timestamp - tolerance` to a last
/// accepted copy at `timestamp + tolerance` (plus a minute for the database clock's drift from
/// ours). A body without `timestamp` or `id` keeps the configured window alone.
pub fn dedupe_window(configured: Duration, signal: &NewSignal) -> Duration {
    match signal.signal_time {
        Some(_) => configured.max(REPLAY_SPAN),
        None => configured,
    }
}

/// Twice the timestamp tolerance, plus a minute of clock drift between us and the database.
const REPLAY_SPAN: Duration = Duration::from_secs(2 * signature::TIMESTAMP_TOLERANCE_SECS as u64 + 60);

/// Charge a stored signal to its owner's budget (a duplicate costs nothing: it places no order).
fn count_signal(state: &AppState, digest: [u8; 32], owner: Uuid) {
    state.rate_limits.remember_owner(digest, owner);
    let _ = state.rate_limits.owner_signals.take(&owner);
}

fn too_many(wait: Duration, message: &str) -> WebhookResponse {
    WebhookResponse::TooManyRequests(
        ErrorBody::new("rate_limited", message),
        crate::rate_limit::retry_after_secs(wait),
    )
}

fn unknown_token() -> WebhookResponse {
    WebhookResponse::Unauthorized(ErrorBody::new(
        "invalid_token",
        "the token is unknown, revoked or malformed",
    ))
}

fn unavailable() -> WebhookResponse {
    WebhookResponse::Unavailable(ErrorBody::new(
        "database_unavailable",
        "the signal could not be stored; it is safe to send it again",
    ))
}

/// The body as stored: the token's value replaced by its display prefix, so a database dump never
/// holds a usable token. If the token was written with JSON escapes, the body is re-serialised.
fn redact_token(text: &str, token: &WebhookToken) -> String {
    let secret = token.expose_secret();
    let shown = format!("{}…[redacted]", token.display_prefix());
    if text.contains(secret) {
        return text.replace(secret, &shown);
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(mut value) => {
            value["token"] = serde_json::Value::String(shown);
            value.to_string()
        }
        Err(_) => String::new(),
    }
}
