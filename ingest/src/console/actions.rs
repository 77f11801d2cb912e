//! What the console's forms do: sign in and out, the event stream, and each admin action. Every
//! action checks the session and its CSRF token, turns the form's fields (named as the admin
//! API's JSON fields) into the API's request type, calls the same function as the API, and
//! redirects (or, for a new token, shows it once).

use std::collections::HashMap;

use poem::http::{StatusCode, header};
use poem::web::{Form, Path};
use poem::{Body, Request, Response};
use uuid::Uuid;

use super::layout;
use super::session::{self, CSRF_FIELD, SIGN_IN_COOKIE, Session};
use super::{State, error_page, forbidden, html, see_other};
use crate::admin::models::{
    ApiKeyCreate, StrategyCreate, SubscriptionStatus, SubscriptionUpdate, UserCreate,
};
use crate::admin::{AdminError, api_keys, strategies, users};

type Fields = Form<HashMap<String, String>>;

/// A form field, trimmed; empty counts as absent (an HTML form always sends its fields).
pub(super) fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    form.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// The session behind a post with its CSRF token, or the 403 to answer. A post from another
/// origin is refused too (SameSite=Strict already keeps the cookie from it).
pub(super) async fn post_session(
    state: &crate::state::AppState,
    req: &Request,
    form: &HashMap<String, String>,
) -> Result<Session, poem::Response> {
    if !same_origin(req) {
        return Err(forbidden("this form was posted from another site"));
    }
    let session = match session::current(state, req).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(forbidden("sign in first: there is no console session")),
        Err(e) => return Err(error_page(None, &e)),
    };
    match form.get(CSRF_FIELD) {
        Some(token) if session::same_secret(token, &session.csrf_token) => Ok(session),
        _ => Err(forbidden(
            "the form's CSRF token is missing or wrong; reload the page and try again",
        )),
    }
}

/// An Origin header, when the browser sends one, names this host.
fn same_origin(req: &Request) -> bool {
    let Some(origin) = req.header(header::ORIGIN) else {
        return true;
    };
    let host = req.header(header::HOST).unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest.eq_ignore_ascii_case(host))
}

#[poem::handler]
pub async fn sign_in_page(state: State<'_>, req: &Request) -> Response {
    if let Ok(Some(_)) = session::current(&state, req).await {
        return see_other("/console");
    }
    sign_in_form(&state, req, StatusCode::OK, None)
}

fn sign_in_form(
    state: &crate::state::AppState,
    req: &Request,
    status: StatusCode,
    problem: Option<&str>,
) -> Response {
    let token = session::random_token();
    let cookie = session::set_cookie(
        SIGN_IN_COOKIE,
        &token,
        std::time::Duration::from_secs(3600),
        session::over_tls(state, req),
    );
    let mut resp = html(
        status,
        layout::page(
            None,
            "Sign in",
            "",
            maud::html! {
                h1 { "Sign in" }
                @if let Some(problem) = problem {
                    p role="alert" class="error" { (problem) }
                }
                form method="post" action="/console/sign-in" class="stack" {
                    input type="hidden" name=(CSRF_FIELD) value=(token);
                    label for="token" { "Admin token (ADMIN_TOKEN)" }
                    input id="token" type="password" name="token" autocomplete="current-password" required autofocus;
                    button type="submit" { "Sign in" }
                }
            },
        ),
    );
    if let Ok(v) = cookie.parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

#[poem::handler]
pub async fn sign_in(state: State<'_>, req: &Request, form: Fields) -> Response {
    let pre = session::cookie(req, SIGN_IN_COOKIE).unwrap_or_default();
    let sent = form.get(CSRF_FIELD).map(String::as_str).unwrap_or_default();
    if !same_origin(req) || pre.is_empty() || !session::same_secret(pre, sent) {
        return forbidden("the sign-in form's CSRF token is missing or wrong; reload the page and try again");
    }
    let token = form.get("token").map(String::as_str).unwrap_or_default();
    if !crate::admin::auth::admin_token_matches(&state, token) {
        tracing::info!("console sign-in refused: wrong admin token");
        // 401: the failed-authentication budget per address counts it (middleware).
        return sign_in_form(
            &state,
            req,
            StatusCode::UNAUTHORIZED,
            Some("That is not the admin token."),
        );
    }
    let (id, _) = match session::start(&state).await {
        Ok(s) => s,
        Err(e) => return error_page(None, &e),
    };
    let secure = session::over_tls(&state, req);
    let mut resp = see_other("/console");
    for cookie in [
        session::set_cookie(session::COOKIE, &id, session::SESSION_TTL, secure),
        session::set_cookie(SIGN_IN_COOKIE, "", std::time::Duration::ZERO, secure),
    ] {
        if let Ok(v) = cookie.parse() {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

#[poem::handler]
pub async fn sign_out(state: State<'_>, req: &Request, form: Fields) -> Response {
    let session = match post_session(&state, req, &form).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    if let Err(e) = session::end(&state, &session).await {
        return error_page(Some(&session), &e);
    }
    let mut resp = see_other("/console/sign-in");
    let cookie = session::set_cookie(
        session::COOKIE,
        "",
        std::time::Duration::ZERO,
        session::over_tls(&state, req),
    );
    if let Ok(v) = cookie.parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// `text/event-stream` of signal and order ids, for a signed-in browser only.
#[poem::handler]
pub async fn events(state: State<'_>, req: &Request) -> Response {
    match session::current(&state, req).await {
        Ok(Some(session)) => {
            // Found out soon if it stops reading, rather than buffered by the kernel for long.
            if let Some(socket) = req.extensions().get::<crate::serve::ConnectionSocket>()
                && let Err(e) = socket.limit_send_buffer(super::events::SEND_BUFFER)
            {
                tracing::warn!(error = %e, "could not cap an event stream's send buffer");
            }
            let lifetime = (session.expires_at - chrono::Utc::now())
                .to_std()
                .unwrap_or_default();
            Response::builder()
                .content_type("text/event-stream")
                .header("x-accel-buffering", "no")
                .body(Body::from_bytes_stream(state.console_events.stream(
                    session.digest(),
                    lifetime,
                    req.extensions().get::<crate::serve::ConnectionCloser>().cloned(),
                )))
        }
        Ok(None) => Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .content_type("text/plain; charset=utf-8")
            .body("sign in to the console first"),
        Err(e) => error_page(None, &e),
    }
}

#[poem::handler]
pub async fn create_user(state: State<'_>, req: &Request, form: Fields) -> Response {
    let session = match post_session(&state, req, &form).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let body = UserCreate {
        email: form.get("email").cloned().unwrap_or_default(),
    };
    match users::create_user(&state, &body).await {
        // Shown on this answer, not after a redirect: the token must never be stored to show later.
        Ok(created) => html(
            StatusCode::CREATED,
            layout::page(
                Some(&session),
                "User created",
                "/console/users",
                maud::html! {
                    h1 { "User created: " (created.email) }
                    (layout::token_shown(&created.webhook_token, "/webhook/tradingview"))
                    p { a href={ "/console/users/" (created.id) } { "Go to the user's page" } }
                },
            ),
        ),
        Err(e) => error_page(Some(&session), &e),
    }
}

/// The subscription form's fields as the API's request body; a bad field is named.
fn subscription_update(form: &HashMap<String, String>) -> Result<SubscriptionUpdate, AdminError> {
    let status = match field(form, "status") {
        Some("active") => SubscriptionStatus::Active,
        Some("inactive") => SubscriptionStatus::Inactive,
        _ => return Err(AdminError::field("status", "must be active or inactive")),
    };
    let expires_at = field(form, "expires_at")
        .map(parse_time)
        .transpose()
        .map_err(|_| {
            AdminError::field(
                "expires_at",
                "must be a date and time (UTC), like 2026-12-31T23:59",
            )
        })?;
    let strategy_id = field(form, "strategy_id")
        .map(Uuid::parse_str)
        .transpose()
        .map_err(|_| AdminError::field("strategy_id", "must be a strategy id"))?;
    Ok(SubscriptionUpdate {
        status,
        expires_at,
        strategy_id,
        size_multiplier: field(form, "size_multiplier").map(str::to_owned),
        max_qty: field(form, "max_qty").map(str::to_owned),
        payment_ref: field(form, "payment_ref").map(str::to_owned),
        leverage: field(form, "leverage").map(str::to_owned),
        margin_mode: field(form, "margin_mode").map(str::to_owned),
    })
}

/// RFC 3339, or an `<input type="datetime-local">` value read as UTC.
pub fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, chrono::ParseError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
                .map(|t| t.and_utc())
        })
}

#[poem::handler]
pub async fn put_subscription(
    state: State<'_>,
    req: &Request,
    Path(id): Path<Uuid>,
    form: Fields,
) -> Response {
    let session = match post_session(&state, req, &form).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let result = match subscription_update(&form) {
        Ok(body) => users::put_subscription(&state, id, &body).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => see_other(&format!("/console/users/{id}")),
        Err(e) => error_page(Some(&session), &e),
    }
}

/// Where a rotation's answer sits: the navigation entry, its heading, and the way back.
struct RotatedPage {
    nav: &'static str,
    heading: &'static str,
    back: &'static str,
}

/// Run a token rotation posted from a form (`rotate`, the admin function's future, starts only
/// once the session and its CSRF token are checked) and show the new token this once.
async fn rotate_token(
    state: &crate::state::AppState,
    req: &Request,
    form: &HashMap<String, String>,
    page: RotatedPage,
    rotate: impl std::future::Future<Output = Result<crate::admin::models::TokenRotated, AdminError>>,
) -> Response {
    let session = match post_session(state, req, form).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    match rotate.await {
        Ok(rotated) => html(
            StatusCode::OK,
            layout::page(
                Some(&session),
                "Token rotated",
                page.nav,
                maud::html! {
                    h1 { (page.heading) }
                    (layout::token_shown(&rotated.webhook_token, "/webhook/tradingview"))
                    p { a href={ (page.nav) "/" (rotated.id) } { (page.back) } }
                },
            ),
        ),
        Err(e) => error_page(Some(&session), &e),
    }
}

#[poem::handler]
pub async fn rotate_user_token(
    state: State<'_>,
    req: &Request,
    Path(id): Path<Uuid>,
    form: Fields,
) -> Response {
    let page = RotatedPage {
        nav: "/console/users",
        heading: "Token rotated",
        back: "Back to the user",
    };
    rotate_token(&state, req, &form, page, users::rotate_user_token(&state, id)).await
}

#[poem::handler]
pub async fn create_api_key(state: State<'_>, req: &Request, Path(id): Path<Uuid>, form: Fields) -> Response {
    let session = match post_session(&state, req, &form).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let body = ApiKeyCreate {
        api_key: form.get("api_key").cloned().unwrap_or_default(),
        api_secret: form.get("api_secret").cloned().unwrap_or_default(),
        label: field(&form, "label").map(str::to_owned),
    };
    match api_keys::add_api_key(&state, id, &body.api_key, &body.api_secret, body.label.as_deref()).await {
        Ok(_) => see_other(&format!("/console/users/{id}")),
        Err(e) => {
            let status = api_key_error_status(&e);
            let problem = e.body();
            html(
                status,
                layout::page(
                    Some(&session),
                    "Key not added",
                    "/console/users",
                    maud::html! {
                        h1 { "The key was not added" }
                        p role="alert" class="error" { (problem.message) " (" code { (problem.error) } ")" }
                        p { a href={ "/console/users/" (id) } { "Back to the user" } }
                    },
                ),
            )
        }
    }
}

/// The status the API answers for a key error (the console shows the same).
fn api_key_error_status(e: &api_keys::ApiKeyError) -> StatusCode {
    use api_keys::ApiKeyError as E;
    match e {
        E::BadRequest(_) => StatusCode::BAD_REQUEST,
        E::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        E::NotFound(_) => StatusCode::NOT_FOUND,
        E::KeyRefused(_) => StatusCode::UNPROCESSABLE_ENTITY,
        E::TooManyRequests(..) => StatusCode::TOO_MANY_REQUESTS,
        E::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        E::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
    }
}

#[poem::handler]
pub async fn revoke_api_key(state: State<'_>, req: &Request, Path(id): Path<Uuid>, form: Fields) -> Response {
    let session = match post_session(&state, req, &form).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    match api_keys::revoke_api_key(&state, id).await {
        Ok(key) => see_other(&format!("/console/users/{}", key.user_id)),
        Err(e) => error_page(Some(&session), &e),
    }
}

#[poem::handler]
pub async fn create_strategy(state: State<'_>, req: &Request, form: Fields) -> Response {
    let session = match post_session(&state, req, &form).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let body = StrategyCreate {
        name: form.get("name").cloned().unwrap_or_default(),
        // Defaults are set through `PATCH /admin/strategies/{id}`; the console's form has none.
        max_lag_secs: None,
        leverage: None,
    };
    match strategies::create_strategy(&state, &body).await {
        Ok(created) => html(
            StatusCode::CREATED,
            layout::page(
                Some(&session),
                "Strategy created",
                "/console/strategies",
                maud::html! {
                    h1 { "Strategy created: " (created.name) }
                    (layout::token_shown(&created.webhook_token, "/webhook/tradingview"))
                    p { a href={ "/console/strategies/" (created.id) } { "Go to the strategy's page" } }
                },
            ),
        ),
        Err(e) => error_page(Some(&session), &e),
    }
}

#[poem::handler]
pub async fn rotate_strategy_token(
    state: State<'_>,
    req: &Request,
    Path(id): Path<Uuid>,
    form: Fields,
) -> Response {
    let page = RotatedPage {
        nav: "/console/strategies",
        heading: "Strategy token rotated",
        back: "Back to the strategy",
    };
    rotate_token(
        &state,
        req,
        &form,
        page,
        strategies::rotate_strategy_token(&state, id),
    )
    .await
}
