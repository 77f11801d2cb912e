//! The operator console under `/console`: server-rendered HTML pages over the admin operations
//! (the same functions the admin API calls, `crate::admin::*`), plain forms that post and
//! redirect, and a live feed over server-sent events. See docs/console.md.

pub mod actions;
pub mod events;
pub mod layout;
pub mod notifications;
pub mod pages;
pub mod pages_activity;
pub mod session;
pub mod strategies;
pub mod trading;

use std::sync::Arc;

use poem::http::{StatusCode, header};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, post};

use crate::admin::AdminError;
use crate::state::AppState;
use session::Session;

/// The console's Content-Security-Policy: its own stylesheet and script only, no inline script or
/// style, forms post only to itself, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// Every console route, to be nested at `/console`.
pub fn routes() -> impl Endpoint<Output = Response> {
    Route::new()
        .at("/", get(pages::overview))
        .at("/sign-in", get(actions::sign_in_page).post(actions::sign_in))
        .at("/sign-out", post(actions::sign_out))
        .at("/events", get(actions::events))
        .at("/users", get(pages::users).post(actions::create_user))
        .at("/users/:id", get(pages::user))
        .at("/users/:id/subscription", post(actions::put_subscription))
        .at("/users/:id/token", post(actions::rotate_user_token))
        .at("/users/:id/api-keys", post(actions::create_api_key))
        .at("/users/:id/notifications", post(notifications::save))
        .at("/api-keys/:id/revoke", post(actions::revoke_api_key))
        .at(
            "/strategies",
            get(strategies::strategies).post(actions::create_strategy),
        )
        .at("/strategies/:id", get(strategies::strategy))
        .at("/strategies/:id/defaults", post(strategies::update_defaults))
        .at("/strategies/:id/token", post(actions::rotate_strategy_token))
        .at("/signals", get(pages_activity::signals))
        .at("/signals/:id", get(pages_activity::signal))
        .at("/orders", get(pages_activity::orders))
        .at("/static/console.css", get(static_css))
        .at("/static/console.js", get(static_js))
        .map_to_response()
}

#[poem::handler]
fn static_css() -> Response {
    Response::builder()
        .content_type("text/css; charset=utf-8")
        .body(CSS)
}

#[poem::handler]
fn static_js() -> Response {
    Response::builder()
        .content_type("text/javascript; charset=utf-8")
        .body(JS)
}

/// An HTML answer.
pub fn html(status: StatusCode, markup: maud::Markup) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

/// Post/redirect/get: 303 to `to` (a path under /console).
pub fn see_other(to: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, to)
        .finish()
}

/// The session of a page request, or the answer to send instead: a redirect to the sign-in page
/// (or a 503 page when the database cannot say).
pub async fn page_session(state: &AppState, req: &Request) -> Result<Session, Response> {
    match session::current(state, req).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(see_other("/console/sign-in")),
        Err(e) => Err(error_page(None, &e)),
    }
}

/// An admin operation's error as a page: its status and its message (which names the field).
pub fn error_page(session: Option<&Session>, e: &AdminError) -> Response {
    let (status, body) = admin_error_parts(e);
    html(
        status,
        layout::page(
            session,
            "Error",
            "",
            maud::html! {
                h1 { "Error" }
                p role="alert" class="error" { (body.message) " (" code { (body.error) } ")" }
                p { a href="/console" { "Back to the overview" } }
            },
        ),
    )
}

/// The status and JSON body the admin API would answer for `e`.
pub fn admin_error_parts(e: &AdminError) -> (StatusCode, &crate::error::ErrorBody) {
    match e {
        AdminError::BadRequest(b) => (StatusCode::BAD_REQUEST, &b.0),
        AdminError::NotFound(b) => (StatusCode::NOT_FOUND, &b.0),
        AdminError::Conflict(b) => (StatusCode::CONFLICT, &b.0),
        AdminError::Unavailable(b) => (StatusCode::SERVICE_UNAVAILABLE, &b.0),
    }
}

/// Plain 403 for a refused post (no session, or a missing or wrong CSRF token).
pub fn forbidden(message: &str) -> Response {
    html(
        StatusCode::FORBIDDEN,
        layout::page(
            None,
            "Refused",
            "",
            maud::html! {
                h1 { "Refused" }
                p role="alert" class="error" { (message) }
                p { a href="/console/sign-in" { "Sign in" } }
            },
        ),
    )
    .into_response()
}

/// The shared state, as every console handler takes it.
pub type State<'a> = poem::web::Data<&'a Arc<AppState>>;
