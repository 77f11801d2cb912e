//! Statements on `strategies`.

/// $1 id, $2 name, $3 token digest, $4 token prefix.
pub const INSERT: &str = "INSERT INTO strategies (id, name, webhook_token_digest, webhook_token_prefix) \
     VALUES ($1, $2, $3, $4) RETURNING created_at";

/// Every strategy, oldest first, with how many subscribers may trade on it now (the one
/// "active subscription" rule, `humbex_subscription_active`, sql/V4).
pub const LIST: &str = "\
    SELECT st.id, st.name, st.active, st.webhook_token_prefix, st.created_at, \
           (SELECT count(*) FROM subscriptions s \
            WHERE s.strategy_id = st.id AND humbex_subscription_active(s.status, s.expires_at)) \
           AS active_subscribers \
    FROM strategies st ORDER BY st.created_at, st.id";

/// $1 id, $2 new token digest, $3 its prefix.
pub const ROTATE_TOKEN: &str = "UPDATE strategies SET webhook_token_digest = $2, webhook_token_prefix = $3, \
     token_rotated_at = now(), updated_at = now() WHERE id = $1 RETURNING token_rotated_at";

pub const EXISTS: &str = "SELECT 1 AS found FROM strategies WHERE id = $1";

/// Every statement above, for the test that prepares them all.
pub fn all() -> Vec<&'static str> {
    vec![INSERT, LIST, ROTATE_TOKEN, EXISTS]
}
