//! The notification settings section of a user's console page and its form: shows the settings,
//! saves them through the admin API's own operation (`admin::notifications::put_settings`, which
//! holds every rule), and shows a newly issued webhook secret once. docs/console.md#notifications.

use std::collections::HashMap;

use humbex_shared::notify::Event;
use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Form, Path};
use poem::{Request, Response};
use uuid::Uuid;

use super::actions::{field, post_session};
use super::layout::{self, csrf};
use super::session::Session;
use super::{State, admin_error_parts, error_page, html as respond_html, see_other};
use crate::admin::AdminError;
use crate::admin::notifications::{
    self as admin_notifications, NotificationSettings, NotificationSettingsUpdate,
};
use crate::state::AppState;

/// What the form shows: the stored settings, or what was just posted when it was refused.
struct Shown<'a> {
    telegram_chat_id: Option<&'a str>,
    webhook_url: Option<&'a str>,
    email: Option<&'a str>,
    events: &'a [String],
    /// What is stored beside the fields, when they are the stored ones: whether a signing secret
    /// is (sql/V7 keeps one exactly while a URL is) and when they were saved (None: never).
    stored: Option<(bool, Option<&'a chrono::DateTime<chrono::Utc>>)>,
}

impl<'a> Shown<'a> {
    fn stored(s: &'a NotificationSettings) -> Self {
        Shown {
            telegram_chat_id: s.telegram_chat_id.as_deref(),
            webhook_url: s.webhook_url.as_deref(),
            email: s.email.as_deref(),
            events: &s.events,
            stored: Some((
                s.webhook_url.is_some(),
                Some(&s.updated_at).filter(|t| t.timestamp() != 0),
            )),
        }
    }
}

/// The section of `/console/users/{id}`, read through the admin API's own operation.
pub async fn section(state: &AppState, session: &Session, id: Uuid) -> Result<Markup, AdminError> {
    let settings = admin_notifications::get_settings(state, id).await?;
    Ok(render(session, id, &Shown::stored(&settings), None))
}

fn render(session: &Session, id: Uuid, shown: &Shown<'_>, problem: Option<&AdminError>) -> Markup {
    html! {
        section aria-labelledby="notifications" {
            h2 id="notifications" { "Notifications" }
            @if let Some(e) = problem {
                @let (_, body) = admin_error_parts(e);
                p role="alert" class="error" { "Not saved. " (body.message) " (" code { (body.error) } ")" }
            }
            @if let Some((secret_stored, updated_at)) = shown.stored {
                dl class="facts" {
                    dt { "webhook signing secret" }
                    dd {
                        @if secret_stored {
                            "set (shown only when it was issued; a new webhook URL issues a new one)"
                        } @else {
                            "none"
                        }
                    }
                    dt { "saved" }
                    dd { (layout::time_or_dash(updated_at)) }
                }
            }
            form method="post" action={ "/console/users/" (id) "/notifications" } class="stack" {
                (csrf(session))
                (text_field("telegram_chat_id", "telegram_chat_id", "Telegram chat id (numeric, or @channel; empty: off)", "text", "40", shown.telegram_chat_id, problem))
                (text_field("webhook_url", "webhook_url", "Webhook URL (https; empty: off)", "url", "2000", shown.webhook_url, problem))
                (text_field("notify_email", "email", "Email (empty: off)", "email", "254", shown.email, problem))
                fieldset {
                    legend { "Events (none: notifications off)" }
                    @for event in Event::ALL {
                        div {
                            input type="checkbox" id={ "event-" (event.as_str()) } name="events" value=(event.as_str())
                                checked[shown.events.iter().any(|e| e == event.as_str())];
                            " "
                            label for={ "event-" (event.as_str()) } { (event.as_str()) }
                        }
                    }
                }
                button type="submit" { "Save notifications" }
            }
        }
    }
}

/// One text field of the form, with the refusal's message beside it when it names the field (as
/// the strategy defaults form shows it).
fn text_field(
    id: &str,
    name: &str,
    label: &str,
    inputmode: &str,
    maxlength: &str,
    value: Option<&str>,
    problem: Option<&AdminError>,
) -> Markup {
    let message = problem
        .filter(|e| e.field_name() == Some(name))
        .map(|e| admin_error_parts(e).1.message.clone());
    let error_id = format!("{id}-error");
    html! {
        label for=(id) { (label) }
        input id=(id) name=(name) inputmode=(inputmode) maxlength=(maxlength) autocomplete="off" value=(value.unwrap_or(""))
            aria-invalid=[message.as_ref().map(|_| "true")]
            aria-describedby=[message.as_ref().map(|_| error_id.as_str())];
        @if let Some(message) = &message {
            p id=(error_id) class="error" { (message) }
        }
    }
}

/// `POST /console/users/{id}/notifications`: the form's fields (named as the API's JSON fields;
/// `events` once per ticked box) as the API's request body, saved by the API's operation.
#[poem::handler]
pub async fn save(
    state: State<'_>,
    req: &Request,
    Path(id): Path<Uuid>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let form: HashMap<String, String> = pairs.iter().cloned().collect();
    let session = match post_session(&state, req, &form).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let body = NotificationSettingsUpdate {
        telegram_chat_id: field(&form, "telegram_chat_id").map(str::to_owned),
        webhook_url: field(&form, "webhook_url").map(str::to_owned),
        email: field(&form, "email").map(str::to_owned),
        events: pairs
            .iter()
            .filter(|(k, _)| k == "events")
            .map(|(_, v)| v.clone())
            .collect(),
    };
    let back = format!("/console/users/{id}");
    match admin_notifications::put_settings(&state, id, &body).await {
        // Shown on this answer, not after a redirect: the secret is never stored to show later.
        Ok(saved) => match saved.webhook_secret {
            Some(secret) => respond_html(
                StatusCode::OK,
                layout::page(
                    Some(&session),
                    "Notifications saved",
                    "/console/users",
                    html! {
                        h1 { "Notifications saved" }
                        section class="secret" aria-labelledby="secret-heading" {
                            h2 id="secret-heading" { "Webhook signing secret (shown once)" }
                            p { "Copy it now: it is stored sealed and never shown again. Give it to whoever receives "
                                code { (saved.settings.webhook_url.as_deref().unwrap_or("")) }
                                " to check the Standard Webhooks signatures. The old secret, if any, no longer signs." }
                            label for="secret-value" { "Secret" }
                            input id="secret-value" type="text" readonly value=(secret);
                        }
                        p { a href=(back) { "Back to the user" } }
                    },
                ),
            ),
            None => see_other(&back),
        },
        Err(e @ AdminError::BadRequest(_)) => {
            // The refused form again, as posted, with the API's message naming the field.
            let events = body.events.clone();
            let shown = Shown {
                telegram_chat_id: body.telegram_chat_id.as_deref(),
                webhook_url: body.webhook_url.as_deref(),
                email: body.email.as_deref(),
                events: &events,
                stored: None,
            };
            let (status, _) = admin_error_parts(&e);
            respond_html(
                status,
                layout::page(
                    Some(&session),
                    "Notifications not saved",
                    "/console/users",
                    html! {
                        h1 { "Notifications not saved" }
                        (render(&session, id, &shown, Some(&e)))
                        p { a href=(back) { "Back to the user (discarding this form)" } }
                    },
                ),
            )
        }
        Err(e) => error_page(Some(&session), &e),
    }
}
