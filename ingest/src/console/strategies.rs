//! The console's strategies pages and the strategy defaults form. Reads go through the admin
//! operations' functions; the form calls `admin::strategies::update_strategy`, the function behind
//! `PATCH /admin/strategies/{id}`, so its checks and messages are the API's.

use std::collections::HashMap;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Form, Path, Query};
use poem::{Request, Response};
use poem_openapi::types::MaybeUndefined;
use uuid::Uuid;

use super::layout::{self, csrf, text_or_dash, time};
use super::pages::users_table;
use super::{State, admin_error_parts, error_page, html as respond_html, page_session};
use crate::admin::models::StrategyUpdate;
use crate::admin::{
    AdminError, activity, positions as admin_positions, strategies as admin_strategies, users as admin_users,
};
use humbex_shared::store::signals::SignalFilter;

/// Signals shown on a strategy's page.
const RECENT_SIGNALS: i64 = 20;

#[poem::handler]
pub async fn strategies(state: State<'_>, req: &Request) -> Response {
    let session = match page_session(&state, req).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let list = match admin_strategies::list_strategies(&state).await {
        Ok(l) => l,
        Err(e) => return error_page(Some(&session), &e),
    };
    respond_html(
        StatusCode::OK,
        layout::page(
            Some(&session),
            "Strategies",
            "/console/strategies",
            html! {
                h1 { "Strategies" }
                table {
                    thead { tr { th scope="col" { "name" } th scope="col" { "active subscribers" } th scope="col" { "token" } th scope="col" { "created" } } }
                    tbody {
                        @for s in &list {
                            tr {
                                td { a href={ "/console/strategies/" (s.id) } { (s.name) } }
                                td { (s.active_subscribers) }
                                td { code { (s.webhook_token_prefix) "…" } }
                                td { (time(&s.created_at)) }
                            }
                        }
                    }
                }
                section aria-labelledby="new-strategy" {
                    h2 id="new-strategy" { "Create a strategy" }
                    form method="post" action="/console/strategies" class="stack" {
                        (csrf(&session))
                        label for="name" { "Name" }
                        input id="name" name="name" required maxlength="100";
                        button type="submit" { "Create strategy" }
                    }
                }
            },
        ),
    )
}

/// The defaults form as posted, and what was wrong with it: shown again with the message beside
/// the field it names.
struct Refused {
    max_lag_secs: String,
    leverage: String,
    error: AdminError,
}

#[poem::handler]
pub async fn strategy(
    state: State<'_>,
    req: &Request,
    Path(id): Path<Uuid>,
    q: Query<HashMap<String, String>>,
) -> Response {
    let session = match page_session(&state, req).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let saved = q.get("saved").is_some_and(|v| v == "1");
    strategy_page(&state, &session, id, saved, None).await
}

/// The form's fields as the API's request body. The form always sends both fields: an empty one
/// clears the default (`null` in the API). Only the shape is read here; the ranges are the admin
/// function's.
fn defaults_update(form: &HashMap<String, String>) -> Result<StrategyUpdate, AdminError> {
    let text = |name: &str| form.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let max_lag_secs = match text("max_lag_secs") {
        None => MaybeUndefined::Null,
        Some(v) => MaybeUndefined::Value(
            v.parse::<u32>()
                .map_err(|_| AdminError::field("max_lag_secs", "must be a whole number of seconds"))?,
        ),
    };
    let leverage = match text("leverage") {
        None => MaybeUndefined::Null,
        Some(v) => MaybeUndefined::Value(v.to_owned()),
    };
    Ok(StrategyUpdate {
        max_lag_secs,
        leverage,
    })
}

/// `POST /console/strategies/{id}/defaults`: `PATCH /admin/strategies/{id}` from a form. Saved:
/// 303 back to the page. Refused: the page again, with the API's status and message at the field.
#[poem::handler]
pub async fn update_defaults(
    state: State<'_>,
    req: &Request,
    Path(id): Path<Uuid>,
    form: Form<HashMap<String, String>>,
) -> Response {
    let session = match super::actions::post_session(&state, req, &form).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let result = match defaults_update(&form) {
        Ok(body) => admin_strategies::update_strategy(&state, id, &body).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => super::see_other(&format!("/console/strategies/{id}?saved=1")),
        Err(error @ AdminError::BadRequest(_)) => {
            let refused = Refused {
                max_lag_secs: form.get("max_lag_secs").cloned().unwrap_or_default(),
                leverage: form.get("leverage").cloned().unwrap_or_default(),
                error,
            };
            strategy_page(&state, &session, id, false, Some(refused)).await
        }
        Err(e) => error_page(Some(&session), &e),
    }
}

/// One field of the defaults form, with the refusal's message beside it when it names the field.
fn defaults_field(
    name: &str,
    label: &str,
    inputmode: &str,
    value: &str,
    refused: Option<&Refused>,
) -> Markup {
    let problem = refused
        .filter(|r| r.error.field_name() == Some(name))
        .map(|r| admin_error_parts(&r.error).1.message.clone());
    let error_id = format!("{name}-error");
    html! {
        label for=(name) { (label) }
        div {
            input id=(name) name=(name) inputmode=(inputmode) value=(value)
                aria-invalid=[problem.as_ref().map(|_| "true")]
                aria-describedby=[problem.as_ref().map(|_| error_id.as_str())];
            @if let Some(problem) = &problem {
                p id=(error_id) class="error" { (problem) }
            }
        }
    }
}

fn defaults_form(
    s: &crate::admin::models::Strategy,
    session: &super::session::Session,
    saved: bool,
    refused: Option<&Refused>,
) -> Markup {
    let lag = s.max_lag_secs.map(|n| n.to_string()).unwrap_or_default();
    let leverage = s.leverage.clone().unwrap_or_default();
    let (lag, leverage) = match refused {
        Some(r) => (r.max_lag_secs.clone(), r.leverage.clone()),
        None => (lag, leverage),
    };
    html! {
        section aria-labelledby="defaults" {
            h2 id="defaults" { "Defaults for its signals" }
            @if saved { p role="status" { "Defaults saved." } }
            @if let Some(r) = refused {
                p role="alert" class="error" {
                    "Not saved: " (admin_error_parts(&r.error).1.message) " (" code { (admin_error_parts(&r.error).1.error) } ")"
                }
            }
            form method="post" action={ "/console/strategies/" (s.id) "/defaults" } class="grid" {
                (csrf(session))
                (defaults_field("max_lag_secs", "Max lag in seconds (1 to 86400; empty: none)", "numeric", &lag, refused))
                (defaults_field("leverage", "Leverage (1 to 200; empty: none)", "decimal", &leverage, refused))
                span {}
                button type="submit" { "Save defaults" }
            }
            p class="muted" { "A signal's own field wins over these, which win over the subscription's." }
        }
    }
}

async fn strategy_page(
    state: &crate::state::AppState,
    session: &super::session::Session,
    id: Uuid,
    saved: bool,
    refused: Option<Refused>,
) -> Response {
    let loaded = async {
        let found = admin_strategies::list_strategies(state)
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| AdminError::not_found("strategy"))?;
        let filter = admin_users::UserFilter {
            strategy_id: Some(id),
            limit: Some(500),
            ..Default::default()
        };
        let subscribers = admin_users::list_users(state, &filter).await?;
        let signal_filter = SignalFilter {
            strategy_id: Some(id),
            ..Default::default()
        };
        let signals = activity::list_signals(state, &signal_filter, Some(RECENT_SIGNALS)).await?;
        let pnl = admin_positions::strategy_pnl(state, id, None, None).await?;
        Ok::<_, AdminError>((found, subscribers, signals, pnl))
    };
    let (s, subscribers, signals, pnl) = match loaded.await {
        Ok(v) => v,
        Err(e) => return error_page(Some(session), &e),
    };
    let status = match &refused {
        Some(r) => admin_error_parts(&r.error).0,
        None => StatusCode::OK,
    };
    respond_html(
        status,
        layout::page(
            Some(session),
            &s.name,
            "/console/strategies",
            html! {
                h1 { "Strategy: " (s.name) }
                dl class="facts" {
                    dt { "id" } dd { code { (s.id) } }
                    dt { "active" } dd { (s.active) }
                    dt { "webhook token" } dd { code { (s.webhook_token_prefix) "…" } }
                    dt { "created" } dd { (time(&s.created_at)) }
                    dt { "default leverage" } dd { (text_or_dash(s.leverage.as_deref())) }
                    dt { "default max lag" } dd { @match s.max_lag_secs { Some(n) => { (n) " s" }, None => { "—" } } }
                }
                (defaults_form(&s, session, saved, refused.as_ref()))
                section aria-labelledby="template" {
                    h2 id="template" { "Alert template" }
                    p { "The token itself was shown once, when it was made; rotate it to see a new one." }
                    label for="alert-template" { "TradingView alert message" }
                    textarea id="alert-template" readonly rows="9" { (layout::alert_message(&format!("{}…", s.webhook_token_prefix))) }
                    form method="post" action={ "/console/strategies/" (s.id) "/token" } {
                        (csrf(session))
                        button type="submit" { "Rotate token" }
                    }
                }
                section aria-labelledby="subscribers" {
                    h2 id="subscribers" { "Subscribers" }
                    (users_table(&subscribers))
                }
                section aria-labelledby="pnl" {
                    h2 id="pnl" { "PnL" }
                    p class="muted" { "Over its subscribers' orders; exits the exchange made count for the signal that opened the position." }
                    (super::trading::pnl_table(&pnl))
                }
                section aria-labelledby="recent" {
                    h2 id="recent" { "Recent signals" }
                    (super::pages_activity::signal_rows_table(&signals.items))
                    p { a href={ "/console/signals?strategy_id=" (s.id) } { "All of this strategy's signals" } }
                }
            },
        ),
    )
}
