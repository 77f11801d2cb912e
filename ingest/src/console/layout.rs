//! The console's page frame and small rendering helpers. maud escapes every interpolated string,
//! so user-supplied text (emails, labels, raw bodies) is shown, never run.

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use super::session::{CSRF_FIELD, Session};

/// Navigation: (path, label).
const NAV: [(&str, &str); 5] = [
    ("/console", "Overview"),
    ("/console/users", "Users"),
    ("/console/strategies", "Strategies"),
    ("/console/signals", "Signals"),
    ("/console/orders", "Failed orders"),
];

/// A whole page. `current` is the navigation entry to mark; `session` None shows no navigation.
pub fn page(session: Option<&Session>, title: &str, current: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · HUMBEX console" }
                link rel="stylesheet" href="/console/static/console.css";
                script src="/console/static/console.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header {
                    span class="brand" { "HUMBEX" }
                    @if let Some(session) = session {
                        nav aria-label="Console" {
                            ul {
                                @for (path, label) in NAV {
                                    li {
                                        @if path == current {
                                            a href=(path) aria-current="page" { (label) }
                                        } @else {
                                            a href=(path) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        form method="post" action="/console/sign-out" class="sign-out" {
                            (csrf(session))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(session.csrf_token); }
}

/// A time as the API writes it (RFC 3339, UTC, seconds).
pub fn time(t: &DateTime<Utc>) -> Markup {
    let text = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    html! { time datetime=(text) { (text) } }
}

/// An optional time, or a dash.
pub fn time_or_dash(t: Option<&DateTime<Utc>>) -> Markup {
    match t {
        Some(t) => time(t),
        None => html! { "—" },
    }
}

/// Optional text, or a dash.
pub fn text_or_dash(t: Option<&str>) -> Markup {
    match t {
        Some(t) if !t.is_empty() => html! { (t) },
        _ => html! { "—" },
    }
}

/// A status as a labelled badge (the colour is a hint; the word is the information).
pub fn status(s: &str) -> Markup {
    html! { span class={ "status status-" (s) } { (s) } }
}

/// Milliseconds between two times, for an order's timings.
pub fn millis_between(from: &DateTime<Utc>, to: Option<&DateTime<Utc>>) -> Markup {
    match to {
        Some(to) => html! { ((*to - *from).num_milliseconds()) " ms" },
        None => html! { "—" },
    }
}

/// The TradingView alert message for a token (the token itself, or a placeholder when it is not
/// shown), as docs/api.md documents it.
pub fn alert_message(token: &str) -> String {
    format!(
        "{{\n  \"token\": \"{token}\",\n  \"action\": \"{{{{strategy.order.action}}}}\",\n  \"symbol\": \"{{{{ticker}}}}\",\n  \"quantity\": \"{{{{strategy.order.contracts}}}}\",\n  \"price\": \"{{{{strategy.order.price}}}}\",\n  \"id\": \"{{{{strategy.order.id}}}}-{{{{timenow}}}}\",\n  \"timestamp\": \"{{{{timenow}}}}\"\n}}"
    )
}

/// A one-time secret shown after creating or rotating a token, with its alert message.
pub fn token_shown(token: &str, webhook_path: &str) -> Markup {
    html! {
        section class="secret" aria-labelledby="token-heading" {
            h2 id="token-heading" { "Webhook token (shown once)" }
            p { "Copy it now: only its digest is kept. The old token, if any, no longer works." }
            label for="token-value" { "Token" }
            input id="token-value" type="text" readonly value=(token);
            label for="alert-message" { "TradingView alert message (webhook URL: your host + " code { (webhook_path) } ")" }
            textarea id="alert-message" readonly rows="9" { (alert_message(token)) }
        }
    }
}
