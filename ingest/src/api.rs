//! The OpenAPI document: every operation, tagged, and the health endpoints.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, OpenApiService};

use crate::admin::activity::ActivityApi;
use crate::admin::api_keys::ApiKeysApi;
use crate::admin::notifications::NotificationsApi;
use crate::admin::positions::PositionsApi;
use crate::admin::strategies::StrategiesApi;
use crate::admin::users::UsersApi;
use crate::error::ErrorBody;
use crate::state::AppState;
use crate::tags::ApiTags;
use crate::webhook::WebhookApi;

#[derive(Debug, Object)]
pub struct HealthStatus {
    /// ok (liveness) or ready (readiness).
    pub status: String,
}

#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// The database answers and carries every migration.
    #[oai(status = 200)]
    Ready(Json<HealthStatus>),
    /// The database is unreachable or not migrated.
    #[oai(status = 503)]
    NotReady(Json<ErrorBody>),
}

pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Liveness: the process answers. Touches no database.
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self) -> Json<HealthStatus> {
        Json(HealthStatus { status: "ok".into() })
    }

    /// Readiness: the database is reachable and migrated.
    #[oai(path = "/ready", method = "get", operation_id = "ready")]
    async fn ready(&self, state: Data<&Arc<AppState>>) -> ReadyResponse {
        if humbex_shared::db::is_ready(&state.pool).await {
            ReadyResponse::Ready(Json(HealthStatus {
                status: "ready".into(),
            }))
        } else {
            ReadyResponse::NotReady(ErrorBody::new(
                "not_ready",
                "the database is unreachable or not migrated",
            ))
        }
    }
}

pub type Apis = (
    WebhookApi,
    UsersApi,
    NotificationsApi,
    StrategiesApi,
    ApiKeysApi,
    ActivityApi,
    PositionsApi,
    HealthApi,
);

/// The service with every API, as served and as printed by `humbex openapi`.
pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            WebhookApi,
            UsersApi,
            NotificationsApi,
            StrategiesApi,
            ApiKeysApi,
            ActivityApi,
            PositionsApi,
            HealthApi,
        ),
        "HUMBEX",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "HUMBEX turns TradingView alerts into orders on Bybit USDT perpetual futures for many users, \
         each on their own account. Signals arrive on /webhook (signed) or /webhook/tradingview (body \
         token); operators manage users, subscriptions and exchange keys under /admin. Every error is \
         JSON {error, message}; decimals are strings; times are RFC 3339 UTC.",
    )
    .server("/")
}

/// Request bodies parsed with unknown fields refused. poem-openapi cannot say so itself, so the
/// document gets `additionalProperties: false` for them here, where clients and fuzzers read it.
const CLOSED_SCHEMAS: [&str; 9] = [
    "SignalRequest",
    "LevelObject",
    "TrailingStopRequest",
    "BreakEvenRequest",
    "UserCreate",
    "StrategyCreate",
    "StrategyUpdate",
    "SubscriptionUpdate",
    "ApiKeyCreate",
];

/// The OpenAPI document as JSON text (what openapi.json holds and /openapi.json serves).
pub fn spec_json() -> String {
    let mut spec: serde_json::Value =
        serde_json::from_str(&service().spec()).expect("poem-openapi emits JSON");
    for name in CLOSED_SCHEMAS {
        if let Some(schema) = spec["components"]["schemas"].get_mut(name) {
            schema["additionalProperties"] = serde_json::Value::Bool(false);
        }
    }
    // poem-openapi marks every union `type: object`, which a bare price (a string) would fail.
    if let Some(level) = spec["components"]["schemas"]["LevelRequest"].as_object_mut() {
        level.remove("type");
    }
    serde_json::to_string_pretty(&spec).expect("a JSON value serialises")
}
