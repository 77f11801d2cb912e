//! Statements on `strategies`.

use std::sync::LazyLock;

/// $1 id, $2 name, $3 token digest, $4 token prefix, $5 max_lag_secs, $6 leverage.
pub const INSERT: &str = "INSERT INTO strategies (id, name, webhook_token_digest, webhook_token_prefix, \
     max_lag_secs, leverage) VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at";

/// A strategy as the admin API shows it, with how many subscribers may trade on it now (the one
/// "active subscription" rule, `humbex_subscription_active`, sql/V4).
const COLUMNS: &str = "st.id, st.name, st.active, st.webhook_token_prefix, st.created_at, \
     st.max_lag_secs, st.leverage, \
     (SELECT count(*) FROM subscriptions s \
      WHERE s.strategy_id = st.id AND humbex_subscription_active(s.status, s.expires_at)) \
     AS active_subscribers";

/// Every strategy, oldest first, as [`COLUMNS`].
pub static LIST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {COLUMNS} FROM strategies st ORDER BY st.created_at, st.id"));

/// One strategy by id ($1), as [`COLUMNS`].
pub static GET: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {COLUMNS} FROM strategies st WHERE st.id = $1"));

/// Set a strategy's ($1) defaults: `max_lag_secs` to $3 when $2, `leverage` to $5 when $4 (a field
/// left out of the request keeps its value).
pub const UPDATE_DEFAULTS: &str = "UPDATE strategies SET \
     max_lag_secs = CASE WHEN $2 THEN $3 ELSE max_lag_secs END, \
     leverage = CASE WHEN $4 THEN $5 ELSE leverage END, updated_at = now() \
     WHERE id = $1 RETURNING id";

/// $1 id, $2 new token digest, $3 its prefix.
pub const ROTATE_TOKEN: &str = "UPDATE strategies SET webhook_token_digest = $2, webhook_token_prefix = $3, \
     token_rotated_at = now(), updated_at = now() WHERE id = $1 RETURNING token_rotated_at";

pub const EXISTS: &str = "SELECT 1 AS found FROM strategies WHERE id = $1";

/// Every statement above, for the test that prepares them all.
pub fn all() -> Vec<&'static str> {
    vec![
        INSERT,
        LIST.as_str(),
        GET.as_str(),
        UPDATE_DEFAULTS,
        ROTATE_TOKEN,
        EXISTS,
    ]
}
