//! The OpenAPI tags that group operations, apart from `api` so that the operation modules (which
//! `api` assembles) do not import from it.

use poem_openapi::Tags;

#[derive(Tags)]
pub enum ApiTags {
    /// Signals from TradingView alerts and signed API clients.
    Webhooks,
    /// Operator endpoints (Authorization: Bearer ADMIN_TOKEN).
    Admin,
    /// Liveness and readiness.
    Health,
}
