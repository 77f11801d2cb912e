//! Admin: users, their webhook tokens and their subscription.

use humbex_shared::db::Statements;
use std::sync::Arc;

use humbex_shared::domain::parse_positive_decimal;
use humbex_shared::domain::trade::MarginMode;
use humbex_shared::store::{strategies, subscriptions, users};
use humbex_shared::token::{TokenKind, WebhookToken};
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use rust_decimal::Decimal;
use tokio_postgres::Row;
use uuid::Uuid;

use super::auth::AdminAuth;
use super::models::{
    Subscription, SubscriptionStatus, SubscriptionUpdate, TokenRotated, User, UserCreate, UserCreated,
};
use super::responses::{admin_response, respond};
use super::{AdminError, decimal_text, is_unique_violation, leverage_field, within_budget};
use crate::state::AppState;
use crate::tags::ApiTags;

admin_response! {
    pub enum CreateUserResponse {
        /// The user was created; the webhook token is shown this once.
        201 Created(Json<UserCreated>),
        BadRequest, Unauthorized, Conflict, TooManyRequests, Unavailable, UnsupportedMediaType,
    }
}

admin_response! {
    pub enum ListUsersResponse {
        200 Ok(Json<Vec<User>>),
        BadRequest, Unauthorized, TooManyRequests, Unavailable,
    }
}

admin_response! {
    pub enum GetUserResponse {
        200 Ok(Json<User>),
        BadRequest, Unauthorized, NotFound, TooManyRequests, Unavailable,
    }
}

admin_response! {
    pub enum RotateUserTokenResponse {
        200 Ok(Json<TokenRotated>),
        BadRequest, Unauthorized, NotFound, TooManyRequests, Unavailable,
    }
}

admin_response! {
    pub enum PutSubscriptionResponse {
        200 Ok(Json<Subscription>),
        BadRequest, Unauthorized, NotFound, TooManyRequests, Unavailable, UnsupportedMediaType,
    }
}

pub struct UsersApi;

fn user_from_row(row: &Row) -> User {
    let user_id: Uuid = row.get("id");
    let subscription = row.get::<_, Option<Uuid>>("sub_id").map(|id| Subscription {
        id,
        user_id,
        strategy_id: row.get("sub_strategy_id"),
        status: row.get("sub_status"),
        active_now: row.get::<_, Option<bool>>("sub_active_now").unwrap_or(false),
        expires_at: row.get("sub_expires_at"),
        size_multiplier: row
            .get::<_, Decimal>("sub_size_multiplier")
            .normalize()
            .to_string(),
        max_qty: row
            .get::<_, Option<Decimal>>("sub_max_qty")
            .map(|d| d.normalize().to_string()),
        payment_ref: row.get("sub_payment_ref"),
        activated_at: row.get("sub_activated_at"),
        activated_by: row.get("sub_activated_by"),
        leverage: decimal_text(row.get("sub_leverage")),
        margin_mode: row.get("sub_margin_mode"),
        updated_at: row.get("sub_updated_at"),
    });
    User {
        id: user_id,
        email: row.get("email"),
        active: row.get("active"),
        webhook_token_prefix: row.get("webhook_token_prefix"),
        token_rotated_at: row.get("token_rotated_at"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        subscription,
    }
}

/// Trim and lower-case an email and check its shape.
pub fn normalise_email(input: &str) -> Result<String, AdminError> {
    let email = input.trim().to_lowercase();
    // Printable ASCII only, exactly as the documented pattern says.
    let valid = email.len() <= 254
        && email.bytes().all(|b| b.is_ascii_graphic())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') && domain.contains('.'));
    if valid {
        Ok(email)
    } else {
        Err(AdminError::field(
            "email",
            "must be an address like trader@example.com",
        ))
    }
}

async fn load_user(state: &AppState, id: Uuid) -> Result<User, AdminError> {
    let client = state.pool.get().await?;
    let row = client
        .row_opt(users::GET.as_str(), &[&id])
        .await?
        .ok_or_else(|| AdminError::not_found("user"))?;
    Ok(user_from_row(&row))
}

/// Which users a listing returns: an email search, one strategy's subscribers, a page.
#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    /// Part of the email address (case-insensitive).
    pub q: Option<String>,
    /// Only users whose subscription follows this strategy.
    pub strategy_id: Option<Uuid>,
    /// None: every matching user (the original listing's behaviour).
    pub limit: Option<i64>,
    pub offset: i64,
}

/// Escape LIKE's wildcards so a search for `a_b` finds that text, not `axb`.
fn like_pattern(q: &str) -> String {
    let escaped = q
        .trim()
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Create a user; the webhook token is in the answer and nowhere else.
pub async fn create_user(state: &AppState, body: &UserCreate) -> Result<UserCreated, AdminError> {
    let email = normalise_email(&body.email)?;
    let token = WebhookToken::generate(TokenKind::User);
    let id = Uuid::now_v7();
    within_budget(async {
        let client = state.pool.get().await?;
        let row = client
            .row(
                users::INSERT,
                &[&id, &email, &token.digest().as_slice(), &token.display_prefix()],
            )
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    AdminError::conflict(format!("a user with email {email} already exists"))
                } else {
                    e.into()
                }
            })?;
        tracing::info!(user_id = %id, "user created");
        Ok(UserCreated {
            id,
            email: email.clone(),
            webhook_token: token.expose_secret().to_owned(),
            webhook_token_prefix: token.display_prefix(),
            created_at: row.get("created_at"),
        })
    })
    .await
}

/// Users matching `filter`, oldest first, with their subscriptions.
pub async fn list_users(state: &AppState, filter: &UserFilter) -> Result<Vec<User>, AdminError> {
    if filter.limit.is_some_and(|n| !(1..=500).contains(&n)) {
        return Err(AdminError::field("limit", "must be between 1 and 500"));
    }
    if filter.offset < 0 {
        return Err(AdminError::field("offset", "must not be negative"));
    }
    let pattern = filter
        .q
        .as_deref()
        .filter(|q| !q.trim().is_empty())
        .map(like_pattern);
    within_budget(async {
        let client = state.pool.get().await?;
        let rows = client
            .rows(
                users::SEARCH.as_str(),
                &[&pattern, &filter.strategy_id, &filter.limit, &filter.offset],
            )
            .await?;
        Ok(rows.iter().map(user_from_row).collect())
    })
    .await
}

/// One user with their subscription.
pub async fn get_user(state: &AppState, id: Uuid) -> Result<User, AdminError> {
    within_budget(load_user(state, id)).await
}

/// Give a user a new webhook token; the old one stops working at once.
pub async fn rotate_user_token(state: &AppState, id: Uuid) -> Result<TokenRotated, AdminError> {
    super::rotate_webhook_token(state, id, TokenKind::User, users::ROTATE_TOKEN, "user").await
}

/// Replace a user's subscription (see the `put_subscription` operation).
pub async fn put_subscription(
    state: &AppState,
    id: Uuid,
    body: &SubscriptionUpdate,
) -> Result<Subscription, AdminError> {
    let size_multiplier = match &body.size_multiplier {
        None => Decimal::ONE,
        Some(text) => parse_positive_decimal(text).map_err(|e| AdminError::field("size_multiplier", e))?,
    };
    let max_qty = match &body.max_qty {
        None => None,
        Some(text) => Some(parse_positive_decimal(text).map_err(|e| AdminError::field("max_qty", e))?),
    };
    let leverage = leverage_field(body.leverage.as_deref())?;
    let margin_mode = body
        .margin_mode
        .as_deref()
        .map(|m| {
            m.parse::<MarginMode>()
                .map(MarginMode::as_str)
                .map_err(|()| AdminError::field("margin_mode", "must be cross or isolated"))
        })
        .transpose()?;
    if let Some(p) = body.payment_ref.as_deref() {
        if p.contains('\0') {
            return Err(AdminError::field(
                "payment_ref",
                "must not contain NUL characters",
            ));
        }
        if p.chars().count() > 200 {
            return Err(AdminError::field("payment_ref", "must be at most 200 characters"));
        }
    }
    within_budget(async {
        let client = state.pool.get().await?;
        if client.row_opt(users::EXISTS, &[&id]).await?.is_none() {
            return Err(AdminError::not_found("user"));
        }
        if let Some(strategy_id) = body.strategy_id
            && client
                .row_opt(strategies::EXISTS, &[&strategy_id])
                .await?
                .is_none()
        {
            // A well-formed reference to nothing: the thing is missing, not the request malformed.
            return Err(AdminError::NotFound(crate::error::ErrorBody::new(
                "not_found",
                "strategy_id: no such strategy",
            )));
        }
        let status = body.status.as_str();
        let activating = body.status == SubscriptionStatus::Active;
        client
            .run(
                subscriptions::UPSERT,
                &[
                    &Uuid::now_v7(),
                    &id,
                    &body.strategy_id,
                    &status,
                    &body.expires_at,
                    &size_multiplier,
                    &max_qty,
                    &body.payment_ref,
                    &activating,
                    &leverage,
                    &margin_mode,
                ],
            )
            .await?;
        tracing::info!(user_id = %id, status, "subscription set");
        let user = load_user(state, id).await?;
        user.subscription
            .ok_or_else(|| AdminError::not_found("subscription"))
    })
    .await
}

#[OpenApi(tag = "ApiTags::Admin")]
impl UsersApi {
    /// Create a user.
    ///
    /// Returns the user's webhook token once; only its SHA-256 digest is kept.
    #[oai(path = "/admin/users", method = "post", operation_id = "create_user")]
    async fn create_user(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        body: Json<UserCreate>,
    ) -> poem::Result<CreateUserResponse> {
        respond(async {
            create_user(&state, &body)
                .await
                .map(|u| CreateUserResponse::Created(Json(u)))
        })
        .await
    }

    /// List users, oldest first, with their subscriptions.
    ///
    /// Without `limit`, every matching user; with it, one page (`offset` skips that many).
    #[oai(path = "/admin/users", method = "get", operation_id = "list_users")]
    async fn list_users(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        /// Only users whose email contains this text (case-insensitive).
        #[oai(validator(max_length = 254))]
        q: Query<Option<String>>,
        /// Only users whose subscription follows this strategy.
        strategy_id: Query<Option<Uuid>>,
        /// Page size, 1 to 500 (default: every user).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<i64>>,
        /// Users to skip before the page (default 0).
        #[oai(validator(minimum(value = "0")))]
        offset: Query<Option<i64>>,
    ) -> poem::Result<ListUsersResponse> {
        let filter = UserFilter {
            q: q.0,
            strategy_id: strategy_id.0,
            limit: limit.0,
            offset: offset.0.unwrap_or(0),
        };
        respond(async {
            list_users(&state, &filter)
                .await
                .map(|u| ListUsersResponse::Ok(Json(u)))
        })
        .await
    }

    /// Get one user.
    #[oai(path = "/admin/users/:id", method = "get", operation_id = "get_user")]
    async fn get_user(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        id: Path<Uuid>,
    ) -> poem::Result<GetUserResponse> {
        respond(async { get_user(&state, id.0).await.map(|u| GetUserResponse::Ok(Json(u))) }).await
    }

    /// Rotate a user's webhook token.
    ///
    /// The new token is returned once; the old one stops working at once.
    #[oai(
        path = "/admin/users/:id/token",
        method = "post",
        operation_id = "rotate_user_token"
    )]
    async fn rotate_token(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        id: Path<Uuid>,
    ) -> poem::Result<RotateUserTokenResponse> {
        respond(async {
            rotate_user_token(&state, id.0)
                .await
                .map(|t| RotateUserTokenResponse::Ok(Json(t)))
        })
        .await
    }

    /// Set a user's subscription.
    ///
    /// Replaces the whole subscription. Setting status to active records when (and that the admin
    /// token) activated it; a user trades only while it is active and not expired. `leverage` and
    /// `margin_mode` are defaults for the user's signals: a signal's own field wins, then its
    /// strategy's default, then these.
    #[oai(
        path = "/admin/users/:id/subscription",
        method = "put",
        operation_id = "put_subscription"
    )]
    async fn put_subscription(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        id: Path<Uuid>,
        body: Json<SubscriptionUpdate>,
    ) -> poem::Result<PutSubscriptionResponse> {
        respond(async {
            put_subscription(&state, id.0, &body)
                .await
                .map(|s| PutSubscriptionResponse::Ok(Json(s)))
        })
        .await
    }
}

/// Paper mode's demo user, as [`ensure_demo_user`] found or made it.
pub struct DemoUser {
    pub id: Uuid,
    /// The webhook token (a secret: the caller stores it in ./.humbex/secrets.env).
    pub token: String,
    /// Made now, on an empty database.
    pub created: bool,
}

/// Paper mode's demo user: reuse the one whose token is `existing`, or, on a database without
/// users, create `demo@humbex.local` with an active subscription. None when other users exist
/// and the demo token is unknown.
pub async fn ensure_demo_user(
    pool: &deadpool_postgres::Pool,
    existing: Option<&str>,
) -> anyhow::Result<Option<DemoUser>> {
    let client = pool.get().await?;
    if let Some(text) = existing
        && let Ok(token) = WebhookToken::parse(text)
        && let Some(row) = client
            .row_opt(users::ID_BY_TOKEN, &[&token.digest().as_slice()])
            .await?
    {
        return Ok(Some(DemoUser {
            id: row.get("id"),
            token: text.to_owned(),
            created: false,
        }));
    }
    let count: i64 = client.row(users::COUNT, &[]).await?.get("users");
    if count > 0 {
        return Ok(None);
    }
    let token = WebhookToken::generate(TokenKind::User);
    let id = Uuid::now_v7();
    client
        .run(
            users::INSERT_DEMO,
            &[
                &id,
                &token.digest().as_slice(),
                &token.display_prefix(),
                &Uuid::now_v7(),
            ],
        )
        .await?;
    tracing::info!(user_id = %id, "paper demo user created");
    Ok(Some(DemoUser {
        id,
        token: token.expose_secret().to_owned(),
        created: true,
    }))
}
