//! The console's overview, users and strategies pages. Each reads through the admin operations'
//! functions (`crate::admin::*`), so a page shows exactly what the API answers.

use std::collections::HashMap;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Path, Query};
use poem::{Request, Response};
use uuid::Uuid;

use super::layout::{self, csrf, status, text_or_dash, time, time_or_dash};
use super::{State, error_page, html as respond_html, page_session};
use crate::admin::models::{ApiKey, User};
use crate::admin::{
    api_keys, overview as admin_overview, positions as admin_positions, strategies as admin_strategies,
    users as admin_users,
};
use humbex_shared::store::signals::SignalFilter;

/// Users per page.
const USERS_PAGE: i64 = 50;
/// Signals shown on a user's or a strategy's page.
const RECENT_SIGNALS: i64 = 20;

type Params = Query<HashMap<String, String>>;

fn wants_fragment(q: &HashMap<String, String>) -> bool {
    q.get("fragment").is_some_and(|v| v == "1")
}

fn ms(v: Option<f64>) -> Markup {
    match v {
        Some(v) => html! { (format!("{v:.0}")) " ms" },
        None => html! { "—" },
    }
}

#[poem::handler]
pub async fn overview(state: State<'_>, req: &Request, q: Params) -> Response {
    let session = match page_session(&state, req).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let o = match admin_overview::overview(&state).await {
        Ok(o) => o,
        Err(e) => return error_page(Some(&session), &e),
    };
    let live = html! {
        p class="muted" { "As of " (time(&o.generated_at)) }
        section aria-labelledby="health" {
            h2 id="health" { "Health" }
            dl class="facts" {
                dt { "ingest" } dd { "up (serving this page); database reachable" }
                dt { "executor LISTEN connections" }
                dd { (o.executor_listeners) @if o.executor_listeners == 0 { " — " strong { "no executor is listening" } } }
                dt { "private streams" } dd { "not available yet (comes with the metrics)" }
                dt { "last fill seen" } dd { (time_or_dash(o.last_fill_at.as_ref())) }
                dt { "oldest signal still pending" } dd { (time_or_dash(o.oldest_pending_signal_at.as_ref())) }
                dt { "keys marked unusable" } dd { (o.unusable_keys) }
            }
        }
        div class="columns" {
            section aria-labelledby="signals24" {
                h2 id="signals24" { "Signals, last 24 h" }
                table { thead { tr { th scope="col" { "status" } th scope="col" { "count" } } }
                    tbody { @for c in &o.signals_24h { tr { td { (status(&c.status)) } td { (c.count) } } } } }
            }
            section aria-labelledby="orders24" {
                h2 id="orders24" { "Orders, last 24 h" }
                table { thead { tr { th scope="col" { "status" } th scope="col" { "count" } } }
                    tbody { @for c in &o.orders_24h { tr { td { (status(&c.status)) } td { (c.count) } } } } }
            }
        }
        section aria-labelledby="latency" {
            h2 id="latency" { "Latency, last 24 h" }
            table {
                thead { tr { th scope="col" { "from webhook to" } th scope="col" { "p50" } th scope="col" { "p90" } th scope="col" { "p99" } } }
                tbody {
                    tr { th scope="row" { "order accepted" } td { (ms(o.webhook_to_order.p50_ms)) } td { (ms(o.webhook_to_order.p90_ms)) } td { (ms(o.webhook_to_order.p99_ms)) } }
                    tr { th scope="row" { "filled" } td { (ms(o.webhook_to_fill.p50_ms)) } td { (ms(o.webhook_to_fill.p90_ms)) } td { (ms(o.webhook_to_fill.p99_ms)) } }
                }
            }
        }
        section aria-labelledby="expiring" {
            h2 id="expiring" { "Subscriptions expiring within 7 days" }
            @if o.expiring_subscriptions.is_empty() { p { "None." } } @else {
                ul { @for e in &o.expiring_subscriptions {
                    li { a href={ "/console/users/" (e.user_id) } { (e.email) } " — " (time(&e.expires_at)) }
                } }
            }
        }
    };
    if wants_fragment(&q) {
        return respond_html(StatusCode::OK, live);
    }
    respond_html(
        StatusCode::OK,
        layout::page(
            Some(&session),
            "Overview",
            "/console",
            html! {
                h1 { "Overview" }
                p class="muted" { "Live: " span id="live-status" aria-live="polite" { "connecting…" } }
                div id="live" data-live="/console?fragment=1" { (live) }
            },
        ),
    )
}

fn subscription_cell(u: &User) -> Markup {
    match &u.subscription {
        None => html! { "none" },
        Some(s) => html! {
            (status(&s.status))
            @if s.status == "active" && !s.active_now { " (expired)" }
            @if let Some(at) = &s.expires_at { " until " (time(at)) }
        },
    }
}

pub(super) fn users_table(list: &[User]) -> Markup {
    html! {
        table {
            thead { tr { th scope="col" { "email" } th scope="col" { "subscription" } th scope="col" { "token" } th scope="col" { "created" } } }
            tbody {
                @for u in list {
                    tr {
                        td { a href={ "/console/users/" (u.id) } { (u.email) } }
                        td { (subscription_cell(u)) }
                        td { code { (u.webhook_token_prefix) "…" } }
                        td { (time(&u.created_at)) }
                    }
                }
            }
        }
    }
}

#[poem::handler]
pub async fn users(state: State<'_>, req: &Request, q: Params) -> Response {
    let session = match page_session(&state, req).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let search = q.get("q").map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let offset = q
        .get("offset")
        .and_then(|o| o.parse::<i64>().ok())
        .unwrap_or(0)
        .max(0);
    let strategy_id = match q.get("strategy_id").map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => match Uuid::parse_str(v) {
            Ok(id) => Some(id),
            Err(_) => {
                let e = crate::admin::AdminError::field("strategy_id", "must be a strategy id");
                return error_page(Some(&session), &e);
            }
        },
    };
    let filter = admin_users::UserFilter {
        q: search.clone(),
        strategy_id,
        limit: Some(USERS_PAGE + 1),
        offset,
    };
    let mut list = match admin_users::list_users(&state, &filter).await {
        Ok(l) => l,
        Err(e) => return error_page(Some(&session), &e),
    };
    let more = list.len() as i64 > USERS_PAGE;
    list.truncate(USERS_PAGE as usize);
    let q_text = search.clone().unwrap_or_default();
    let page_link = |offset: i64| {
        let mut url = format!("/console/users?offset={offset}");
        if let Some(s) = &search {
            url.push_str("&q=");
            url.push_str(&urlencode(s));
        }
        if let Some(id) = strategy_id {
            url.push_str(&format!("&strategy_id={id}"));
        }
        url
    };
    respond_html(
        StatusCode::OK,
        layout::page(
            Some(&session),
            "Users",
            "/console/users",
            html! {
                h1 { "Users" }
                form method="get" action="/console/users" class="inline" role="search" {
                    label for="q" { "Search by email" }
                    input id="q" type="search" name="q" value=(q_text);
                    button type="submit" { "Search" }
                }
                (users_table(&list))
                nav class="pager" aria-label="Pages" {
                    @if offset > 0 { a href=(page_link((offset - USERS_PAGE).max(0))) { "← Previous" } }
                    " " span { "users " (offset + 1) "–" (offset + list.len() as i64) }
                    @if more { " " a href=(page_link(offset + USERS_PAGE)) { "Next →" } }
                }
                section aria-labelledby="new-user" {
                    h2 id="new-user" { "Create a user" }
                    form method="post" action="/console/users" class="stack" {
                        (csrf(&session))
                        label for="email" { "Email" }
                        input id="email" type="email" name="email" required maxlength="254";
                        button type="submit" { "Create user" }
                    }
                }
            },
        ),
    )
}

/// Percent-encode a query value (RFC 3986 unreserved characters kept).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn key_state(k: &ApiKey) -> Markup {
    if let Some(at) = &k.revoked_at {
        html! { (status("revoked")) " " (time(at)) }
    } else if let Some(at) = &k.unusable_at {
        html! { (status("unusable")) " " (time(at)) ": " (text_or_dash(k.unusable_reason.as_deref())) }
    } else {
        html! { (status("usable")) }
    }
}

#[poem::handler]
pub async fn user(state: State<'_>, req: &Request, Path(id): Path<Uuid>) -> Response {
    let session = match page_session(&state, req).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let loaded = async {
        let user = admin_users::get_user(&state, id).await?;
        let keys = api_keys::list_api_keys(&state, id).await?;
        let strategy_list = admin_strategies::list_strategies(&state).await?;
        let filter = SignalFilter {
            user_id: Some(id),
            ..Default::default()
        };
        let signals = crate::admin::activity::list_signals(&state, &filter, Some(RECENT_SIGNALS)).await?;
        let positions = admin_positions::user_positions(&state, id).await?;
        let pnl = admin_positions::user_pnl(&state, id, None, None).await?;
        Ok::<_, crate::admin::AdminError>((user, keys, strategy_list, signals, positions, pnl))
    };
    let (u, keys, strategy_list, signals, positions, pnl) = match loaded.await {
        Ok(v) => v,
        Err(e) => return error_page(Some(&session), &e),
    };
    let notifications = match super::notifications::section(&state, &session, id).await {
        Ok(m) => m,
        Err(e) => return error_page(Some(&session), &e),
    };
    let sub = u.subscription.as_ref();
    let expires = sub
        .and_then(|s| s.expires_at)
        .map(|t| t.format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default();
    let current_strategy = sub.and_then(|s| s.strategy_id);
    respond_html(
        StatusCode::OK,
        layout::page(
            Some(&session),
            &u.email,
            "/console/users",
            html! {
                h1 { (u.email) }
                dl class="facts" {
                    dt { "id" } dd { code { (u.id) } }
                    dt { "subscription" } dd { (subscription_cell(&u)) }
                    dt { "webhook token" } dd { code { (u.webhook_token_prefix) "…" } ", rotated " (time(&u.token_rotated_at)) }
                    dt { "created" } dd { (time(&u.created_at)) }
                }
                section aria-labelledby="sub" {
                    h2 id="sub" { "Subscription" }
                    form method="post" action={ "/console/users/" (u.id) "/subscription" } class="grid" {
                        (csrf(&session))
                        label for="status" { "Status" }
                        select id="status" name="status" {
                            @for s in ["active", "inactive"] {
                                option value=(s) selected[sub.is_some_and(|x| x.status == s)] { (s) }
                            }
                        }
                        label for="expires_at" { "Expires at (UTC; empty: never)" }
                        input id="expires_at" type="datetime-local" name="expires_at" value=(expires);
                        label for="strategy_id" { "Strategy" }
                        select id="strategy_id" name="strategy_id" {
                            option value="" { "none (own token only)" }
                            @for st in &strategy_list {
                                option value=(st.id) selected[current_strategy == Some(st.id)] { (st.name) }
                            }
                        }
                        label for="size_multiplier" { "Size multiplier" }
                        input id="size_multiplier" name="size_multiplier" inputmode="decimal" value=(sub.map(|s| s.size_multiplier.as_str()).unwrap_or("1"));
                        label for="max_qty" { "Max quantity per order (empty: no cap)" }
                        input id="max_qty" name="max_qty" inputmode="decimal" value=(sub.and_then(|s| s.max_qty.as_deref()).unwrap_or(""));
                        label for="payment_ref" { "Payment reference" }
                        input id="payment_ref" name="payment_ref" maxlength="200" value=(sub.and_then(|s| s.payment_ref.as_deref()).unwrap_or(""));
                        label for="leverage" { "Leverage (1 to 200; empty: the exchange's)" }
                        input id="leverage" name="leverage" inputmode="decimal" value=(sub.and_then(|s| s.leverage.as_deref()).unwrap_or(""));
                        label for="margin_mode" { "Margin mode" }
                        select id="margin_mode" name="margin_mode" {
                            option value="" { "the exchange's" }
                            @for m in ["cross", "isolated"] {
                                option value=(m) selected[sub.is_some_and(|x| x.margin_mode.as_deref() == Some(m))] { (m) }
                            }
                        }
                        span {}
                        button type="submit" { "Save subscription" }
                    }
                    p class="muted" { "Leverage and margin mode are defaults: a signal's own field wins, then its strategy's." }
                }
                section aria-labelledby="token" {
                    h2 id="token" { "Webhook token" }
                    form method="post" action={ "/console/users/" (u.id) "/token" } {
                        (csrf(&session))
                        button type="submit" { "Rotate token" }
                    }
                }
                section aria-labelledby="keys" {
                    h2 id="keys" { "Exchange keys" }
                    table {
                        thead { tr { th scope="col" { "label" } th scope="col" { "key" } th scope="col" { "state" } th scope="col" { "added" } th scope="col" { span class="visually-hidden" { "actions" } } } }
                        tbody {
                            @for k in &keys {
                                tr {
                                    td { (text_or_dash(Some(&k.label))) }
                                    td { code { (k.api_key_masked) } }
                                    td { (key_state(k)) }
                                    td { (time(&k.created_at)) }
                                    td {
                                        @if k.revoked_at.is_none() {
                                            form method="post" action={ "/console/api-keys/" (k.id) "/revoke" } {
                                                (csrf(&session))
                                                button type="submit" aria-label={ "Revoke key " (k.api_key_masked) } { "Revoke" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    h3 { "Add a key" }
                    p class="muted" { "Checked with the exchange before it is stored, as through the API." }
                    form method="post" action={ "/console/users/" (u.id) "/api-keys" } class="grid" {
                        (csrf(&session))
                        label for="api_key" { "API key" }
                        input id="api_key" name="api_key" required autocomplete="off";
                        label for="api_secret" { "API secret" }
                        input id="api_secret" type="password" name="api_secret" required autocomplete="off";
                        label for="label" { "Label" }
                        input id="label" name="label" maxlength="100";
                        span {}
                        button type="submit" { "Add key" }
                    }
                }
                (notifications)
                section aria-labelledby="positions" {
                    h2 id="positions" { "Positions and PnL" }
                    (super::trading::positions_table(&positions))
                    (super::trading::pnl_table(&pnl))
                }
                section aria-labelledby="recent" {
                    h2 id="recent" { "Recent signals" }
                    (super::pages_activity::signal_rows_table(&signals.items))
                    p { a href={ "/console/signals?user_id=" (u.id) } { "All of this user's signals" } }
                }
            },
        ),
    )
}
