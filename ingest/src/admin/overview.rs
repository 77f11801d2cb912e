//! Admin: the operator's overview (health, the last 24 hours by outcome, latencies, what needs
//! attention) and failed orders grouped by reason. The console's overview and orders pages show
//! exactly these answers (docs/console.md).

use humbex_shared::db::Statements;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use humbex_shared::store::overview;
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::auth::AdminAuth;
use super::responses::{admin_response, respond};
use super::{AdminError, within_budget};
use crate::state::AppState;
use crate::tags::ApiTags;

/// The overview's window for counts and latencies.
const WINDOW_SECS: f64 = 24.0 * 3600.0;
/// Subscriptions expiring within this many seconds are listed.
const EXPIRING_SECS: f64 = 7.0 * 24.0 * 3600.0;
/// The failed-orders report's default window.
const FAILURES_DEFAULT_DAYS: i64 = 7;

/// How many rows have one status.
#[derive(Debug, Clone, Object)]
pub struct StatusCount {
    pub status: String,
    pub count: i64,
}

/// Latency percentiles in milliseconds; null when nothing was measured.
#[derive(Debug, Clone, Object)]
pub struct Percentiles {
    #[oai(nullable)]
    pub p50_ms: Option<f64>,
    #[oai(nullable)]
    pub p90_ms: Option<f64>,
    #[oai(nullable)]
    pub p99_ms: Option<f64>,
}

/// An active subscription that ends soon.
#[derive(Debug, Clone, Object)]
pub struct ExpiringSubscription {
    pub user_id: Uuid,
    pub email: String,
    pub expires_at: DateTime<Utc>,
}

/// What the operator looks at first.
#[derive(Debug, Clone, Object)]
pub struct Overview {
    /// When this was computed.
    pub generated_at: DateTime<Utc>,
    /// Executor processes holding their LISTEN connection now (application_name
    /// humbex-executor-listen); 0 means no executor is listening.
    pub executor_listeners: i64,
    /// The newest fill recorded, from any account.
    #[oai(nullable)]
    pub last_fill_at: Option<DateTime<Utc>>,
    /// When the oldest signal still waiting for the executor arrived.
    #[oai(nullable)]
    pub oldest_pending_signal_at: Option<DateTime<Utc>>,
    /// Signals of the last 24 hours by status.
    pub signals_24h: Vec<StatusCount>,
    /// Orders of the last 24 hours by status.
    pub orders_24h: Vec<StatusCount>,
    /// Webhook received → order accepted by the exchange, over the newest 1,000 orders of the
    /// last 24 hours.
    pub webhook_to_order: Percentiles,
    /// Webhook received → order filled, over the same orders.
    pub webhook_to_fill: Percentiles,
    /// Exchange keys marked unusable and not revoked.
    pub unusable_keys: i64,
    /// Active subscriptions that expire within 7 days (at most 50, soonest first).
    pub expiring_subscriptions: Vec<ExpiringSubscription>,
}

/// Failed or rejected orders sharing a status and the exchange's code and message.
#[derive(Debug, Clone, Object)]
pub struct FailureGroup {
    /// failed or rejected.
    pub status: String,
    /// Bybit's return code, when it gave one.
    pub error_code: Option<String>,
    /// The reason recorded (Bybit's message, or ours).
    pub reason: String,
    /// Orders in the group.
    pub orders: i64,
    /// Distinct users among them.
    pub users: i64,
    pub last_at: DateTime<Utc>,
}

fn percentiles(values: Option<Vec<Option<f64>>>) -> Percentiles {
    let at = |i: usize| values.as_ref().and_then(|v| v.get(i).copied().flatten());
    Percentiles {
        p50_ms: at(0),
        p90_ms: at(1),
        p99_ms: at(2),
    }
}

fn counts(rows: &[tokio_postgres::Row]) -> Vec<StatusCount> {
    rows.iter()
        .map(|r| StatusCount {
            status: r.get("status"),
            count: r.get("n"),
        })
        .collect()
}

/// The overview, from a handful of indexed reads.
pub async fn overview(state: &AppState) -> Result<Overview, AdminError> {
    within_budget(async {
        let client = state.pool.get().await?;
        let signals = client
            .rows(overview::SIGNALS_BY_STATUS.as_str(), &[&WINDOW_SECS])
            .await?;
        let orders = client.rows(overview::ORDERS_BY_STATUS, &[&WINDOW_SECS]).await?;
        let latencies = client.row(overview::LATENCIES, &[&WINDOW_SECS]).await?;
        let now = client.row(overview::STATE, &[]).await?;
        let expiring = client.rows(overview::EXPIRING, &[&EXPIRING_SECS]).await?;
        Ok(Overview {
            generated_at: state.now(),
            executor_listeners: now.get("executor_listeners"),
            last_fill_at: now.get("last_fill_at"),
            oldest_pending_signal_at: now.get("oldest_pending_at"),
            signals_24h: counts(&signals),
            orders_24h: counts(&orders),
            webhook_to_order: percentiles(latencies.get("to_order_ms")),
            webhook_to_fill: percentiles(latencies.get("to_fill_ms")),
            unusable_keys: now.get("unusable_keys"),
            expiring_subscriptions: expiring
                .iter()
                .map(|r| ExpiringSubscription {
                    user_id: r.get("user_id"),
                    email: r.get("email"),
                    expires_at: r.get("expires_at"),
                })
                .collect(),
        })
    })
    .await
}

/// Failed and rejected orders since `since` (default: the last 7 days), grouped by reason.
pub async fn failure_groups(
    state: &AppState,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<FailureGroup>, AdminError> {
    let since = since.unwrap_or_else(|| state.now() - chrono::Duration::days(FAILURES_DEFAULT_DAYS));
    within_budget(async {
        let client = state.pool.get().await?;
        let rows = client.rows(overview::FAILURE_GROUPS, &[&since]).await?;
        Ok(rows
            .iter()
            .map(|r| FailureGroup {
                status: r.get("status"),
                error_code: r.get("error_code"),
                reason: r.get("reason"),
                orders: r.get("orders"),
                users: r.get("users"),
                last_at: r.get("last_at"),
            })
            .collect())
    })
    .await
}

admin_response! {
    pub enum GetOverviewResponse {
        200 Ok(Json<Overview>),
        Unauthorized, TooManyRequests, Unavailable,
    }
}

admin_response! {
    pub enum ListOrderFailuresResponse {
        200 Ok(Json<Vec<FailureGroup>>),
        BadRequest, Unauthorized, TooManyRequests, Unavailable,
    }
}

pub struct OverviewApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl OverviewApi {
    /// The operator's overview.
    ///
    /// Executor LISTEN connections, the last fill, the oldest waiting signal, signals and orders of
    /// the last 24 hours by status, webhook → order and → fill latency percentiles (newest 1,000
    /// orders of the last 24 hours), keys marked
    /// unusable, subscriptions expiring within 7 days.
    #[oai(path = "/admin/overview", method = "get", operation_id = "get_overview")]
    async fn get_overview(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
    ) -> poem::Result<GetOverviewResponse> {
        respond(async { overview(&state).await.map(|o| GetOverviewResponse::Ok(Json(o))) }).await
    }

    /// Failed and rejected orders grouped by reason, largest group first.
    #[oai(
        path = "/admin/orders/failures",
        method = "get",
        operation_id = "list_order_failures"
    )]
    async fn list_order_failures(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        /// Only orders created at or after this time (default: the last 7 days).
        since: Query<Option<DateTime<Utc>>>,
    ) -> poem::Result<ListOrderFailuresResponse> {
        respond(async {
            failure_groups(&state, since.0)
                .await
                .map(|g| ListOrderFailuresResponse::Ok(Json(g)))
        })
        .await
    }
}
