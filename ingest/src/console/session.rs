//! Console sessions: signing in with ADMIN_TOKEN, the session cookie, its CSRF token, signing out
//! (docs/console.md#sessions). A session row keeps only the SHA-256 of the cookie's value.

use humbex_shared::db::Statements;
use std::time::Duration;

use humbex_shared::store::console_sessions;
use poem::Request;
use poem::http::header;

use crate::admin::{AdminError, within_budget};
use crate::state::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "humbex_console";
/// The cookie that carries the sign-in form's CSRF token before any session exists.
pub const SIGN_IN_COOKIE: &str = "humbex_console_sign_in";
/// The hidden form field every console form carries.
pub const CSRF_FIELD: &str = "csrf_token";
/// A session ends this long after sign-in, whatever happens in between.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// A signed-in browser, as a request proved it.
#[derive(Clone)]
pub struct Session {
    pub csrf_token: String,
    /// When the session ends (the event stream closes then too).
    pub expires_at: chrono::DateTime<chrono::Utc>,
    digest: [u8; 32],
}

impl Session {
    /// The SHA-256 of the session's cookie: its key in `console_sessions` and in the live feed.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session(..)")
    }
}

/// A fresh random value for a cookie or a CSRF token: 256 bits, hex.
pub fn random_token() -> String {
    hex::encode(humbex_shared::token::random_bytes::<32>())
}

/// The value of cookie `name` in the request, if present.
pub fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Compare two secrets without an early exit on the first differing byte.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (humbex_shared::token::digest(a), humbex_shared::token::digest(b));
    a.iter().zip(b.iter()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The session the request's cookie names, if it is live.
pub async fn current(state: &AppState, req: &Request) -> Result<Option<Session>, AdminError> {
    let Some(id) = cookie(req, COOKIE) else {
        return Ok(None);
    };
    let digest = humbex_shared::token::digest(id);
    within_budget(async {
        let client = state.pool.get().await?;
        let row = client
            .row_opt(console_sessions::GET, &[&digest.as_slice()])
            .await?;
        Ok(row.map(|r| Session {
            csrf_token: r.get("csrf_token"),
            expires_at: r.get("expires_at"),
            digest,
        }))
    })
    .await
}

/// Start a session; the answer is the cookie's value (shown to nobody but the browser).
pub async fn start(state: &AppState) -> Result<(String, Session), AdminError> {
    let id = random_token();
    let digest = humbex_shared::token::digest(&id);
    let csrf_token = random_token();
    let expires_at = within_budget(async {
        let client = state.pool.get().await?;
        client.run(console_sessions::DELETE_EXPIRED, &[]).await?;
        let row = client
            .row(
                console_sessions::INSERT,
                &[&digest.as_slice(), &csrf_token, &SESSION_TTL.as_secs_f64()],
            )
            .await?;
        Ok(row.get("expires_at"))
    })
    .await?;
    tracing::info!("console session started");
    Ok((
        id,
        Session {
            csrf_token,
            expires_at,
            digest,
        },
    ))
}

/// End a session: its cookie signs nothing in any more, and its open event streams end, on this
/// ingest at once and on the others when they hear the statement's NOTIFY.
pub async fn end(state: &AppState, session: &Session) -> Result<(), AdminError> {
    within_budget(async {
        let client = state.pool.get().await?;
        client
            .run(console_sessions::DELETE, &[&session.digest.as_slice()])
            .await?;
        Ok(())
    })
    .await?;
    // Not only through our own LISTEN connection, which may be down right now.
    state.console_events.revoke(session.digest);
    tracing::info!("console session ended");
    Ok(())
}

/// Whether the browser reached us over TLS: only a trusted proxy's X-Forwarded-Proto says so
/// (ingest itself speaks plain HTTP; docs/deployment.md#tls-and-what-to-expose).
pub fn over_tls(state: &AppState, req: &Request) -> bool {
    let peer = req
        .remote_addr()
        .as_socket_addr()
        .map(|a| crate::client_ip::normalise(a.ip()));
    peer.is_some_and(|ip| state.ip_policy.trusted_proxies.contains(&ip))
        && req
            .header("x-forwarded-proto")
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value: HttpOnly (no script reads it), SameSite=Strict (no other site's page
/// sends it), Path=/console, Secure behind TLS. `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/console; Max-Age={}; HttpOnly; SameSite=Strict{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}
