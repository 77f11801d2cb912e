//! Statements on `console_sessions`: the operator console's sign-in sessions (docs/console.md).

/// $1 digest of the session id, $2 CSRF token, $3 lifetime in seconds.
pub const INSERT: &str = "INSERT INTO console_sessions (id_digest, csrf_token, expires_at) \
     VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING expires_at";

/// The live session whose id has digest $1: its CSRF token.
pub const GET: &str = "SELECT csrf_token, expires_at FROM console_sessions \
     WHERE id_digest = $1 AND expires_at > now()";

/// Sign out: $1 digest of the session id. Every ingest is told on `humbex_console_sessions`
/// (`channels::CONSOLE_SESSIONS`), so the session's event streams end wherever they are open.
pub const DELETE: &str = "\
    WITH gone AS (DELETE FROM console_sessions WHERE id_digest = $1 RETURNING id_digest) \
    SELECT pg_notify('humbex_console_sessions', encode(id_digest, 'hex')) FROM gone";

/// Forget sessions that have expired (run at each sign-in, so the table stays small).
pub const DELETE_EXPIRED: &str = "DELETE FROM console_sessions WHERE expires_at <= now()";

/// Every statement above, for the test that prepares them all.
pub fn all() -> Vec<&'static str> {
    vec![INSERT, GET, DELETE, DELETE_EXPIRED]
}
