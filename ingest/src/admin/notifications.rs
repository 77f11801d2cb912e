//! Admin: a user's notification settings (`PUT`/`GET /admin/users/{id}/notifications`): which
//! destinations, which events. A new webhook URL gets a new signing secret, returned this once and
//! stored sealed; a Telegram chat is checked with Telegram when the bot is configured here
//! (docs/notifications.md#connecting-a-user).

use humbex_shared::db::Statements;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use humbex_shared::notify::{self, Event, SendError};
use humbex_shared::store::{notifications as sql, users};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use secrecy::ExposeSecret;
use tokio_postgres::Row;
use uuid::Uuid;

use super::auth::AdminAuth;
use super::responses::{admin_response, respond};
use super::{AdminError, within_budget};
use crate::state::AppState;
use crate::tags::ApiTags;

/// Where a user's notifications go and which events they want. Every field absent or null turns
/// that channel off; `events` empty turns notifications off.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct NotificationSettingsUpdate {
    /// The Telegram chat: the numeric id the bot sees (the user first writes to the bot), or a
    /// public `@channel` the bot is an admin of.
    #[oai(validator(max_length = 40))]
    pub telegram_chat_id: Option<String>,
    /// A JSON webhook (https; http only to localhost), signed with Standard Webhooks headers.
    /// Setting a new URL issues a new `webhook_secret`.
    #[oai(validator(max_length = 2000))]
    pub webhook_url: Option<String>,
    #[oai(validator(max_length = 254))]
    pub email: Option<String>,
    /// Any of: order_filled, order_failed, key_unusable, take_profit_hit, stop_loss_hit,
    /// liquidation, subscription_expiring, subscription_expired, signal_rejected, executor_lagging,
    /// daily_summary.
    #[oai(validator(max_items = 11))]
    pub events: Vec<String>,
}

/// A user's notification settings.
#[derive(Debug, Object)]
pub struct NotificationSettings {
    pub user_id: Uuid,
    #[oai(nullable)]
    pub telegram_chat_id: Option<String>,
    #[oai(nullable)]
    pub webhook_url: Option<String>,
    #[oai(nullable)]
    pub email: Option<String>,
    pub events: Vec<String>,
    pub updated_at: DateTime<Utc>,
}

/// The settings as stored, with the webhook's signing secret when this request issued one.
#[derive(Debug, Object)]
pub struct NotificationSettingsSaved {
    // Flattened: the settings' fields sit beside `webhook_secret`, as the schema has always said.
    #[oai(flatten)]
    pub settings: NotificationSettings,
    /// The Standard Webhooks secret (`whsec_…`) of a new `webhook_url`, shown only now; null when
    /// the URL is unchanged (the secret stays) or absent.
    #[oai(nullable)]
    pub webhook_secret: Option<String>,
}

admin_response! {
    pub enum PutNotificationsResponse {
        200 Ok(Json<NotificationSettingsSaved>),
        BadRequest, Unauthorized, NotFound, TooManyRequests, Unavailable, UnsupportedMediaType,
    }
}

admin_response! {
    pub enum GetNotificationsResponse {
        200 Ok(Json<NotificationSettings>),
        BadRequest, Unauthorized, NotFound, TooManyRequests, Unavailable,
    }
}

pub struct NotificationsApi;

fn settings_from_row(row: &Row) -> NotificationSettings {
    NotificationSettings {
        user_id: row.get("user_id"),
        telegram_chat_id: row.get("telegram_chat_id"),
        webhook_url: row.get("webhook_url"),
        email: row.get("email"),
        events: row.get("events"),
        updated_at: row.get("updated_at"),
    }
}

/// The body parsed into checked values; each refusal names its field.
struct Parsed {
    telegram_chat_id: Option<String>,
    webhook_url: Option<String>,
    email: Option<String>,
    events: Vec<String>,
}

fn parse(body: &NotificationSettingsUpdate) -> Result<Parsed, AdminError> {
    let field = |name: &'static str| move |p: String| AdminError::field(name, p);
    let mut events: Vec<Event> = Vec::new();
    for (i, text) in body.events.iter().enumerate() {
        let event = Event::parse(text).ok_or_else(|| {
            AdminError::field(
                &format!("events[{i}]"),
                format!("{text:?} is not an event (order_filled, order_failed, key_unusable, …)"),
            )
        })?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    events.sort();
    Ok(Parsed {
        telegram_chat_id: body
            .telegram_chat_id
            .as_deref()
            .map(notify::parse_telegram_chat_id)
            .transpose()
            .map_err(field("telegram_chat_id"))?,
        webhook_url: body
            .webhook_url
            .as_deref()
            .map(notify::parse_webhook_url)
            .transpose()
            .map_err(field("webhook_url"))?,
        email: body
            .email
            .as_deref()
            .map(notify::parse_email)
            .transpose()
            .map_err(field("email"))?,
        events: events.iter().map(|e| e.as_str().to_owned()).collect(),
    })
}

/// Ask Telegram whether the bot can reach `chat_id`; a refusal ("chat not found") is the request's
/// fault and names the field. Without a bot configured here, or when Telegram cannot be reached,
/// the chat is taken as given (the sender records Telegram's refusal on each delivery instead).
async fn check_chat(state: &AppState, chat_id: &str) -> Result<(), AdminError> {
    let Some(telegram) = &state.telegram else {
        return Ok(());
    };
    let answer = state
        .notify_http
        .post(telegram.method_url("getChat"))
        .json(&serde_json::json!({ "chat_id": chat_id }))
        .send()
        .await;
    let response = match answer {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e.without_url(), "could not ask Telegram about a chat; taking it as given");
            return Ok(());
        }
    };
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    match notify::telegram_outcome(status, &body) {
        Ok(()) => Ok(()),
        Err(SendError::Refused(why)) => Err(AdminError::field(
            "telegram_chat_id",
            format!("{why} (the user must first send /start to the bot)"),
        )),
        Err(SendError::Retry { detail, .. }) => {
            tracing::warn!(%detail, "Telegram could not check a chat; taking it as given");
            Ok(())
        }
    }
}

/// Replace user `id`'s settings (what `PUT /admin/users/{id}/notifications` and the console's form
/// both call): the fields checked, the Telegram chat asked about, a new URL's secret issued and
/// sealed. The answer carries the secret only when this call issued it.
pub async fn put_settings(
    state: &AppState,
    id: Uuid,
    body: &NotificationSettingsUpdate,
) -> Result<NotificationSettingsSaved, AdminError> {
    let parsed = parse(body)?;
    if let Some(chat) = &parsed.telegram_chat_id {
        check_chat(state, chat).await?;
    }
    let secret = parsed
        .webhook_url
        .as_ref()
        .map(|_| notify::generate_webhook_secret());
    let sealed = secret
        .as_ref()
        .map(|s| state.sealer.seal_webhook_secret(id, s.expose_secret()))
        .transpose()
        .map_err(|e| {
            tracing::error!(error = %e, "could not seal a webhook secret");
            AdminError::Unavailable(crate::error::ErrorBody::new(
                "encryption_unavailable",
                "the webhook secret could not be sealed; nothing was changed",
            ))
        })?;
    within_budget(async {
        let client = state.pool.get().await?;
        if client.row_opt(users::EXISTS, &[&id]).await?.is_none() {
            return Err(AdminError::not_found("user"));
        }
        let row = client
            .row(
                sql::PUT_SETTINGS,
                &[
                    &id,
                    &parsed.telegram_chat_id,
                    &parsed.webhook_url,
                    &sealed,
                    &parsed.email,
                    &parsed.events,
                ],
            )
            .await?;
        let issued: bool = row.get("secret_issued");
        tracing::info!(user_id = %id, secret_issued = issued, "notification settings set");
        Ok(NotificationSettingsSaved {
            settings: settings_from_row(&row),
            webhook_secret: secret.filter(|_| issued).map(|s| s.expose_secret().to_owned()),
        })
    })
    .await
}

/// User `id`'s settings (never the webhook secret); a user who never set any has every channel
/// off and no events.
pub async fn get_settings(state: &AppState, id: Uuid) -> Result<NotificationSettings, AdminError> {
    within_budget(async {
        let client = state.pool.get().await?;
        if let Some(row) = client.row_opt(sql::GET_SETTINGS, &[&id]).await? {
            return Ok(settings_from_row(&row));
        }
        if client.row_opt(users::EXISTS, &[&id]).await?.is_none() {
            return Err(AdminError::not_found("user"));
        }
        Ok(NotificationSettings {
            user_id: id,
            telegram_chat_id: None,
            webhook_url: None,
            email: None,
            events: Vec::new(),
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        })
    })
    .await
}

#[OpenApi(tag = "ApiTags::Admin")]
impl NotificationsApi {
    /// Set a user's notifications.
    ///
    /// Replaces the whole settings. A new or changed `webhook_url` issues a new signing secret,
    /// returned this once as `webhook_secret`; an unchanged URL keeps its secret.
    #[oai(
        path = "/admin/users/:id/notifications",
        method = "put",
        operation_id = "put_notifications"
    )]
    async fn put_notifications(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        id: Path<Uuid>,
        body: Json<NotificationSettingsUpdate>,
    ) -> poem::Result<PutNotificationsResponse> {
        respond(async {
            put_settings(&state, id.0, &body)
                .await
                .map(|saved| PutNotificationsResponse::Ok(Json(saved)))
        })
        .await
    }

    /// Get a user's notifications (never the webhook secret).
    #[oai(
        path = "/admin/users/:id/notifications",
        method = "get",
        operation_id = "get_notifications"
    )]
    async fn get_notifications(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        id: Path<Uuid>,
    ) -> poem::Result<GetNotificationsResponse> {
        respond(async {
            get_settings(&state, id.0)
                .await
                .map(|s| GetNotificationsResponse::Ok(Json(s)))
        })
        .await
    }
}
