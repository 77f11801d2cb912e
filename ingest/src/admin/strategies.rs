//! Admin: strategies, the named signal sources whose token fans a signal out to subscribers.

use humbex_shared::db::Statements;
use std::sync::Arc;

use humbex_shared::store::strategies;
use humbex_shared::token::{TokenKind, WebhookToken};
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use tokio_postgres::Row;
use uuid::Uuid;

use super::auth::AdminAuth;
use super::models::{Strategy, StrategyCreate, StrategyCreated, StrategyUpdate, TokenRotated};
use super::responses::{admin_response, respond};
use super::{AdminError, decimal_text, is_unique_violation, leverage_field, max_lag_field, within_budget};
use crate::state::AppState;
use crate::tags::ApiTags;

admin_response! {
    pub enum CreateStrategyResponse {
        /// The strategy was created; its webhook token is shown this once.
        201 Created(Json<StrategyCreated>),
        BadRequest, Unauthorized, Conflict, TooManyRequests, Unavailable, UnsupportedMediaType,
    }
}

admin_response! {
    pub enum ListStrategiesResponse {
        200 Ok(Json<Vec<Strategy>>),
        Unauthorized, TooManyRequests, Unavailable,
    }
}

admin_response! {
    pub enum UpdateStrategyResponse {
        200 Ok(Json<Strategy>),
        BadRequest, Unauthorized, NotFound, TooManyRequests, Unavailable, UnsupportedMediaType,
    }
}

admin_response! {
    pub enum RotateStrategyTokenResponse {
        200 Ok(Json<TokenRotated>),
        BadRequest, Unauthorized, NotFound, TooManyRequests, Unavailable,
    }
}

pub struct StrategiesApi;

fn strategy_from_row(r: &Row) -> Strategy {
    Strategy {
        id: r.get("id"),
        name: r.get("name"),
        active: r.get("active"),
        webhook_token_prefix: r.get("webhook_token_prefix"),
        created_at: r.get("created_at"),
        active_subscribers: r.get("active_subscribers"),
        max_lag_secs: r.get::<_, Option<i32>>("max_lag_secs").map(|s| s as u32),
        leverage: decimal_text(r.get("leverage")),
    }
}

/// A field of an update: left out (keep), null (clear) or a value.
fn update_of<T, U>(
    field: &MaybeUndefined<T>,
    check: impl FnOnce(Option<&T>) -> Result<Option<U>, AdminError>,
) -> Result<(bool, Option<U>), AdminError> {
    match field {
        MaybeUndefined::Undefined => Ok((false, None)),
        MaybeUndefined::Null => Ok((true, None)),
        MaybeUndefined::Value(v) => Ok((true, check(Some(v))?)),
    }
}

/// Create a strategy; its webhook token is in the answer and nowhere else.
pub async fn create_strategy(state: &AppState, body: &StrategyCreate) -> Result<StrategyCreated, AdminError> {
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AdminError::field("name", "must be 1 to 100 printable characters"));
    }
    let max_lag_secs = max_lag_field(body.max_lag_secs)?;
    let leverage = leverage_field(body.leverage.as_deref())?;
    let token = WebhookToken::generate(TokenKind::Strategy);
    let id = Uuid::now_v7();
    within_budget(async {
        let client = state.pool.get().await?;
        let row = client
            .row(
                strategies::INSERT,
                &[
                    &id,
                    &name,
                    &token.digest().as_slice(),
                    &token.display_prefix(),
                    &max_lag_secs,
                    &leverage,
                ],
            )
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    AdminError::conflict(format!("a strategy named {name:?} already exists"))
                } else {
                    e.into()
                }
            })?;
        tracing::info!(strategy_id = %id, "strategy created");
        Ok(StrategyCreated {
            id,
            name: name.clone(),
            webhook_token: token.expose_secret().to_owned(),
            webhook_token_prefix: token.display_prefix(),
            max_lag_secs: max_lag_secs.map(|s| s as u32),
            leverage: decimal_text(leverage),
            created_at: row.get("created_at"),
        })
    })
    .await
}

/// Every strategy with its number of active subscribers.
pub async fn list_strategies(state: &AppState) -> Result<Vec<Strategy>, AdminError> {
    within_budget(async {
        let client = state.pool.get().await?;
        let rows = client.rows(strategies::LIST.as_str(), &[]).await?;
        Ok(rows.iter().map(strategy_from_row).collect())
    })
    .await
}

/// Set a strategy's defaults for its signals (see the `update_strategy` operation).
pub async fn update_strategy(
    state: &AppState,
    id: Uuid,
    body: &StrategyUpdate,
) -> Result<Strategy, AdminError> {
    let (set_lag, max_lag_secs) = update_of(&body.max_lag_secs, |v| max_lag_field(v.copied()))?;
    let (set_leverage, leverage) = update_of(&body.leverage, |v| leverage_field(v.map(String::as_str)))?;
    within_budget(async {
        let client = state.pool.get().await?;
        client
            .row_opt(
                strategies::UPDATE_DEFAULTS,
                &[&id, &set_lag, &max_lag_secs, &set_leverage, &leverage],
            )
            .await?
            .ok_or_else(|| AdminError::not_found("strategy"))?;
        tracing::info!(strategy_id = %id, "strategy defaults set");
        let row = client
            .row_opt(strategies::GET.as_str(), &[&id])
            .await?
            .ok_or_else(|| AdminError::not_found("strategy"))?;
        Ok(strategy_from_row(&row))
    })
    .await
}

/// Give a strategy a new webhook token; the old one stops working at once.
pub async fn rotate_strategy_token(state: &AppState, id: Uuid) -> Result<TokenRotated, AdminError> {
    super::rotate_webhook_token(
        state,
        id,
        TokenKind::Strategy,
        strategies::ROTATE_TOKEN,
        "strategy",
    )
    .await
}

#[OpenApi(tag = "ApiTags::Admin")]
impl StrategiesApi {
    /// Create a strategy.
    ///
    /// A signal sent with its token goes to every user whose subscription to it is active.
    #[oai(path = "/admin/strategies", method = "post", operation_id = "create_strategy")]
    async fn create_strategy(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        body: Json<StrategyCreate>,
    ) -> poem::Result<CreateStrategyResponse> {
        respond(async {
            create_strategy(&state, &body)
                .await
                .map(|s| CreateStrategyResponse::Created(Json(s)))
        })
        .await
    }

    /// List strategies with their number of active subscribers.
    #[oai(path = "/admin/strategies", method = "get", operation_id = "list_strategies")]
    async fn list_strategies(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
    ) -> poem::Result<ListStrategiesResponse> {
        respond(async {
            list_strategies(&state)
                .await
                .map(|s| ListStrategiesResponse::Ok(Json(s)))
        })
        .await
    }

    /// Set a strategy's defaults for its signals.
    ///
    /// `max_lag_secs` and `leverage` apply to the strategy's signals that do not name their own
    /// (a signal's field wins over the strategy's, which wins over the subscription's). A field
    /// left out keeps its value; `null` clears it.
    #[oai(
        path = "/admin/strategies/:id",
        method = "patch",
        operation_id = "update_strategy"
    )]
    async fn update_strategy(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        id: Path<Uuid>,
        body: Json<StrategyUpdate>,
    ) -> poem::Result<UpdateStrategyResponse> {
        respond(async {
            update_strategy(&state, id.0, &body)
                .await
                .map(|s| UpdateStrategyResponse::Ok(Json(s)))
        })
        .await
    }

    /// Rotate a strategy's webhook token; the old one stops working at once.
    #[oai(
        path = "/admin/strategies/:id/token",
        method = "post",
        operation_id = "rotate_strategy_token"
    )]
    async fn rotate_token(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        id: Path<Uuid>,
    ) -> poem::Result<RotateStrategyTokenResponse> {
        respond(async {
            rotate_strategy_token(&state, id.0)
                .await
                .map(|t| RotateStrategyTokenResponse::Ok(Json(t)))
        })
        .await
    }
}
