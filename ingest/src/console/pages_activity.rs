//! The console's signals (live, filtered), one signal with its orders, and failed orders grouped
//! by reason; each from the admin operations' functions.

use std::collections::HashMap;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Path, Query};
use poem::{Request, Response};
use uuid::Uuid;

use super::layout::{self, status, text_or_dash, time, time_or_dash};
use super::pages::urlencode;
use super::{State, error_page, html as respond_html, page_session};
use crate::admin::activity::{self, SignalStatusFilter};
use crate::admin::models::Signal;
use crate::admin::{AdminError, overview};
use humbex_shared::store::signals::SignalFilter;
use poem_openapi::types::ToJSON;

/// Signals per page of the live table.
const SIGNALS_PAGE: i64 = 50;

/// A table of signals, each linking to its page.
pub fn signal_rows_table(items: &[Signal]) -> Markup {
    html! {
        table {
            thead { tr {
                th scope="col" { "received" } th scope="col" { "status" } th scope="col" { "action" }
                th scope="col" { "symbol" } th scope="col" { "quantity" } th scope="col" { "owner" } th scope="col" { "signal" }
            } }
            tbody { (signal_rows(items)) }
        }
    }
}

fn signal_rows(items: &[Signal]) -> Markup {
    html! {
        @for s in items {
            tr data-signal-id=(s.id) {
                td { (time(&s.received_at)) }
                td { (status(&s.status)) @if let Some(r) = &s.reject_reason { " " span class="muted" { (r) } } }
                td { (s.action) }
                td { (s.symbol) }
                td { (text_or_dash(s.quantity.as_deref())) }
                td {
                    @if let Some(u) = s.user_id { a href={ "/console/users/" (u) } { "user" } }
                    @if let Some(st) = s.strategy_id { a href={ "/console/strategies/" (st) } { "strategy" } }
                }
                td { a href={ "/console/signals/" (s.id) } { code { (s.id.to_string()[..8]) "…" } } }
            }
        }
    }
}

/// The filter form's fields as the API's filter; a bad field is named.
fn signal_filter(q: &HashMap<String, String>) -> Result<SignalFilter, AdminError> {
    let get = |name: &str| q.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let uuid = |name: &str| {
        get(name)
            .map(Uuid::parse_str)
            .transpose()
            .map_err(|_| AdminError::field(name, "must be an id (UUID)"))
    };
    let time = |name: &str| {
        get(name)
            .map(super::actions::parse_time)
            .transpose()
            .map_err(|_| AdminError::field(name, "must be a date and time (UTC), like 2026-12-31T23:59"))
    };
    Ok(SignalFilter {
        before: uuid("before")?,
        user_id: uuid("user_id")?,
        strategy_id: uuid("strategy_id")?,
        status: match get("status") {
            None => None,
            Some(s) => Some(
                SignalStatusFilter::parse(s)
                    .ok_or_else(|| {
                        AdminError::field("status", "must be received, processing, done or rejected")
                    })?
                    .as_str(),
            ),
        },
        since: time("since")?,
        until: time("until")?,
    })
}

#[poem::handler]
pub async fn signals(state: State<'_>, req: &Request, Query(q): Query<HashMap<String, String>>) -> Response {
    let session = match page_session(&state, req).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let page = async {
        let filter = signal_filter(&q)?;
        activity::list_signals(&state, &filter, Some(SIGNALS_PAGE)).await
    };
    let page = match page.await {
        Ok(p) => p,
        Err(e) => return error_page(Some(&session), &e),
    };
    if q.get("fragment").is_some_and(|v| v == "1") {
        return respond_html(StatusCode::OK, signal_rows(&page.items));
    }
    let value = |name: &str| q.get(name).cloned().unwrap_or_default();
    // The same filters, for the live refresh and the next page.
    let kept: String = ["user_id", "strategy_id", "status", "since", "until"]
        .iter()
        .filter_map(|k| {
            q.get(*k)
                .filter(|v| !v.trim().is_empty())
                .map(|v| format!("&{k}={}", urlencode(v.trim())))
        })
        .collect();
    // Only the first page is live: older pages do not change when a signal arrives.
    let live = !q.contains_key("before");
    respond_html(
        StatusCode::OK,
        layout::page(
            Some(&session),
            "Signals",
            "/console/signals",
            html! {
                h1 { "Signals" }
                form method="get" action="/console/signals" class="filters" {
                    div { label for="user_id" { "User id" } input id="user_id" name="user_id" value=(value("user_id")); }
                    div { label for="strategy_id" { "Strategy id" } input id="strategy_id" name="strategy_id" value=(value("strategy_id")); }
                    div { label for="status" { "Status" }
                        select id="status" name="status" {
                            option value="" { "any" }
                            @for s in ["received", "processing", "done", "rejected"] {
                                option value=(s) selected[q.get("status").is_some_and(|v| v == s)] { (s) }
                            }
                        }
                    }
                    div { label for="since" { "Since (UTC)" } input id="since" type="datetime-local" name="since" value=(value("since")); }
                    div { label for="until" { "Until (UTC)" } input id="until" type="datetime-local" name="until" value=(value("until")); }
                    div { button type="submit" { "Filter" } }
                }
                @if live { p class="muted" { "Live: " span id="live-status" aria-live="polite" { "connecting…" } } }
                table {
                    thead { tr {
                        th scope="col" { "received" } th scope="col" { "status" } th scope="col" { "action" }
                        th scope="col" { "symbol" } th scope="col" { "quantity" } th scope="col" { "owner" } th scope="col" { "signal" }
                    } }
                    @if live {
                        tbody id="live" data-live={ "/console/signals?fragment=1" (kept) } { (signal_rows(&page.items)) }
                    } @else {
                        tbody { (signal_rows(&page.items)) }
                    }
                }
                @if let Some(before) = page.next_before {
                    nav class="pager" aria-label="Pages" { a href={ "/console/signals?before=" (before) (kept) } { "Older →" } }
                }
            },
        ),
    )
}

#[poem::handler]
pub async fn signal(
    state: State<'_>,
    req: &Request,
    Path(id): Path<Uuid>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let session = match page_session(&state, req).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let d = match activity::get_signal(&state, id).await {
        Ok(d) => d,
        Err(e) => return error_page(Some(&session), &e),
    };
    let s = &d.signal;
    let order_list = super::trading::signal_orders(&d.orders);
    if q.get("fragment").is_some_and(|v| v == "1") {
        return respond_html(StatusCode::OK, order_list);
    }
    respond_html(
        StatusCode::OK,
        layout::page(
            Some(&session),
            "Signal",
            "/console/signals",
            html! {
                h1 { "Signal " code { (s.id) } }
                dl class="facts" {
                    dt { "status" } dd { (status(&s.status)) @if let Some(r) = &s.reject_reason { " " (r) } }
                    dt { "received" } dd { (time(&s.received_at)) }
                    dt { "route" } dd { (s.source) }
                    dt { "action" } dd { (s.action) " " (s.symbol) " " (text_or_dash(s.quantity.as_deref())) }
                    dt { "price" } dd { (text_or_dash(s.price.as_deref())) }
                    dt { "client id" } dd { (text_or_dash(s.client_id.as_deref())) }
                    dt { "signal time" } dd { (time_or_dash(s.signal_time.as_ref())) }
                    dt { "comment" } dd { (text_or_dash(s.comment.as_deref())) }
                    dt { "owner" } dd {
                        @if let Some(u) = s.user_id { a href={ "/console/users/" (u) } { "user " (u) } }
                        @if let Some(st) = s.strategy_id { a href={ "/console/strategies/" (st) } { "strategy " (st) } }
                    }
                }
                h2 { "Raw body (token redacted)" }
                pre class="raw" { (s.raw_body) }
                @if let Some(t) = &s.trade {
                    h2 { "Trade fields (v2, as read)" }
                    pre class="raw" { (t.to_json_string()) }
                }
                p class="muted" { "Orders are live: " span id="live-status" aria-live="polite" { "connecting…" } }
                div id="live" data-live={ "/console/signals/" (s.id) "?fragment=1" } { (order_list) }
            },
        ),
    )
}

#[poem::handler]
pub async fn orders(state: State<'_>, req: &Request, Query(q): Query<HashMap<String, String>>) -> Response {
    let session = match page_session(&state, req).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let since = match q.get("since").map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => match super::actions::parse_time(v) {
            Ok(t) => Some(t),
            Err(_) => {
                return error_page(
                    Some(&session),
                    &AdminError::field("since", "must be a date and time (UTC)"),
                );
            }
        },
    };
    let groups = match overview::failure_groups(&state, since).await {
        Ok(g) => g,
        Err(e) => return error_page(Some(&session), &e),
    };
    respond_html(
        StatusCode::OK,
        layout::page(
            Some(&session),
            "Failed orders",
            "/console/orders",
            html! {
                h1 { "Failed and rejected orders, by reason" }
                form method="get" action="/console/orders" class="inline" {
                    label for="since" { "Since (UTC; default: 7 days ago)" }
                    input id="since" type="datetime-local" name="since" value=(q.get("since").cloned().unwrap_or_default());
                    button type="submit" { "Show" }
                }
                @if groups.is_empty() { p { "None." } } @else {
                    table {
                        thead { tr { th scope="col" { "status" } th scope="col" { "code" } th scope="col" { "reason" } th scope="col" { "orders" } th scope="col" { "users" } th scope="col" { "last" } } }
                        tbody { @for g in &groups { tr {
                            td { (status(&g.status)) } td { (text_or_dash(g.error_code.as_deref())) } td { (g.reason) }
                            td { (g.orders) } td { (g.users) } td { (time(&g.last_at)) }
                        } } }
                    }
                }
            },
        ),
    )
}
