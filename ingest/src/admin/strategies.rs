//! Admin: strategies, the named signal sources whose token fans a signal out to subscribers.

use std::sync::Arc;

use humbex_shared::store::strategies;
use humbex_shared::token::{TokenKind, WebhookToken};
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use uuid::Uuid;

use super::auth::AdminAuth;
use super::models::{Strategy, StrategyCreate, StrategyCreated, TokenRotated};
use super::responses::{admin_response, respond};
use super::{AdminError, is_unique_violation, within_budget};
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
    pub enum RotateStrategyTokenResponse {
        200 Ok(Json<TokenRotated>),
        BadRequest, Unauthorized, NotFound, TooManyRequests, Unavailable,
    }
}

pub struct StrategiesApi;

/// Create a strategy; its webhook token is in the answer and nowhere else.
pub async fn create_strategy(state: &AppState, body: &StrategyCreate) -> Result<StrategyCreated, AdminError> {
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AdminError::field("name", "must be 1 to 100 printable characters"));
    }
    let token = WebhookToken::generate(TokenKind::Strategy);
    let id = Uuid::now_v7();
    within_budget(async {
        let client = state.pool.get().await?;
        let row = client
            .query_one(
                strategies::INSERT,
                &[&id, &name, &token.digest().as_slice(), &token.display_prefix()],
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
            created_at: row.get("created_at"),
        })
    })
    .await
}

/// Every strategy with its number of active subscribers.
pub async fn list_strategies(state: &AppState) -> Result<Vec<Strategy>, AdminError> {
    within_budget(async {
        let client = state.pool.get().await?;
        let rows = client.query(strategies::LIST, &[]).await?;
        Ok(rows
            .iter()
            .map(|r| Strategy {
                id: r.get("id"),
                name: r.get("name"),
                active: r.get("active"),
                webhook_token_prefix: r.get("webhook_token_prefix"),
                created_at: r.get("created_at"),
                active_subscribers: r.get("active_subscribers"),
            })
            .collect())
    })
    .await
}

/// Give a strategy a new webhook token; the old one stops working at once.
pub async fn rotate_strategy_token(state: &AppState, id: Uuid) -> Result<TokenRotated, AdminError> {
    let token = WebhookToken::generate(TokenKind::Strategy);
    within_budget(async {
        let client = state.pool.get().await?;
        let row = client
            .query_opt(
                strategies::ROTATE_TOKEN,
                &[&id, &token.digest().as_slice(), &token.display_prefix()],
            )
            .await?
            .ok_or_else(|| AdminError::not_found("strategy"))?;
        tracing::info!(strategy_id = %id, "strategy webhook token rotated");
        Ok(TokenRotated {
            id,
            webhook_token: token.expose_secret().to_owned(),
            webhook_token_prefix: token.display_prefix(),
            rotated_at: row.get("token_rotated_at"),
        })
    })
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
