//! The admin API (Authorization: Bearer ADMIN_TOKEN): users, strategies, subscriptions, exchange
//! keys, and read access to signals and orders.

pub mod activity;
pub mod api_keys;
pub mod auth;
pub mod key_check;
pub mod models;
pub mod notifications;
pub mod overview;
pub mod positions;
pub mod responses;
pub mod strategies;
pub mod users;

use std::future::Future;
use std::time::Duration;

use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;
use tokio_postgres::error::SqlState;

use crate::error::ErrorBody;

/// Bound on any admin database work, so an operator's request never hangs on a dead database.
const ADMIN_DB_BUDGET: Duration = Duration::from_secs(5);

/// Every way an admin operation's own code can fail, each a JSON `{error, message}`. Operations
/// answer with their own response type (see [`responses`]), which lists only the statuses that
/// operation can return; 401, 415 and 429 come from the framework and the middleware.
#[derive(ApiResponse, Debug)]
pub enum AdminError {
    /// The request is malformed; the message names the field.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No such user, strategy, key, signal or order.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// It already exists (duplicate email or strategy name).
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The database is unreachable; nothing was changed.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

impl AdminError {
    pub fn field(field: &str, problem: impl std::fmt::Display) -> Self {
        AdminError::BadRequest(ErrorBody::new("invalid_field", format!("{field}: {problem}")))
    }
    /// The field a [`AdminError::field`] error names (a form shows the message beside it).
    pub fn field_name(&self) -> Option<&str> {
        match self {
            AdminError::BadRequest(b) if b.0.error == "invalid_field" => {
                b.0.message.split_once(": ").map(|(field, _)| field)
            }
            _ => None,
        }
    }
    pub fn not_found(what: &str) -> Self {
        AdminError::NotFound(ErrorBody::new("not_found", format!("no such {what}")))
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        AdminError::Conflict(ErrorBody::new("conflict", message))
    }
}

impl From<tokio_postgres::Error> for AdminError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.code().is_some_and(|c| c.code().starts_with("22")) {
            // Data exceptions (say a NUL byte in text) are the request's fault, not the server's.
            return AdminError::BadRequest(ErrorBody::new(
                "invalid_request",
                "a value in the request cannot be stored (check for NUL characters)",
            ));
        }
        tracing::warn!(error = ?e, "admin database error");
        unavailable()
    }
}

impl From<deadpool_postgres::PoolError> for AdminError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        tracing::warn!(error = ?e, "admin database pool error");
        unavailable()
    }
}

fn unavailable() -> AdminError {
    AdminError::Unavailable(ErrorBody::new(
        "database_unavailable",
        "the database is unavailable; nothing was changed",
    ))
}

/// Run admin database work under the admin time budget.
pub async fn within_budget<T>(work: impl Future<Output = Result<T, AdminError>>) -> Result<T, AdminError> {
    tokio::time::timeout(ADMIN_DB_BUDGET, work)
        .await
        .unwrap_or_else(|_| Err(unavailable()))
}

/// True when a database error is a unique-key violation.
pub fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// A leverage default as the admin API takes it, checked by the domain's one rule.
pub fn leverage_field(text: Option<&str>) -> Result<Option<rust_decimal::Decimal>, AdminError> {
    text.map(|t| {
        humbex_shared::domain::trade::Leverage::parse(t.trim())
            .map(|l| l.get())
            .map_err(|e| AdminError::field("leverage", e))
    })
    .transpose()
}

/// A `max_lag_secs` default as the admin API takes it (the column is an integer).
pub fn max_lag_field(secs: Option<u32>) -> Result<Option<i32>, AdminError> {
    use humbex_shared::domain::trade::MAX_LAG_SECS;
    secs.map(|s| match s {
        1..=MAX_LAG_SECS => Ok(s as i32),
        _ => Err(AdminError::field(
            "max_lag_secs",
            format!("must be between 1 and {MAX_LAG_SECS}"),
        )),
    })
    .transpose()
}

/// A decimal column as the admin API shows it.
pub fn decimal_text(d: Option<rust_decimal::Decimal>) -> Option<String> {
    d.map(|d| d.normalize().to_string())
}

/// Page size for list endpoints: default 50, at most 500.
pub fn page_limit(limit: Option<i64>) -> Result<i64, AdminError> {
    match limit {
        None => Ok(50),
        Some(n) if (1..=500).contains(&n) => Ok(n),
        Some(_) => Err(AdminError::field("limit", "must be between 1 and 500")),
    }
}

/// Give a user or a strategy (`kind`) a new webhook token; the old one stops working at once.
/// `rotate` is its table's statement ($1 id, $2 digest, $3 display prefix, returning
/// `token_rotated_at`); `what` names it in the 404.
pub async fn rotate_webhook_token(
    state: &crate::state::AppState,
    id: uuid::Uuid,
    kind: humbex_shared::token::TokenKind,
    rotate: &'static str,
    what: &'static str,
) -> Result<models::TokenRotated, AdminError> {
    use humbex_shared::db::Statements;
    let token = humbex_shared::token::WebhookToken::generate(kind);
    within_budget(async {
        let client = state.pool.get().await?;
        let row = client
            .row_opt(
                rotate,
                &[
                    &id as &(dyn tokio_postgres::types::ToSql + Sync),
                    &token.digest().as_slice(),
                    &token.display_prefix(),
                ],
            )
            .await?
            .ok_or_else(|| AdminError::not_found(what))?;
        tracing::info!(owner = what, id = %id, "webhook token rotated");
        Ok(models::TokenRotated {
            id,
            webhook_token: token.expose_secret().to_owned(),
            webhook_token_prefix: token.display_prefix(),
            rotated_at: row.get("token_rotated_at"),
        })
    })
    .await
}
