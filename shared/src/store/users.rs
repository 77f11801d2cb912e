//! Statements on `users` (a user's subscription is read with it: see [`USER_COLUMNS`]).

use std::sync::LazyLock;

/// A user with their subscription (a LEFT JOIN of `subscriptions s` on `users u`); the
/// subscription's columns carry a `sub_` prefix, `sub_active_now` applies the one
/// "active subscription" rule (`humbex_subscription_active`, sql/V4).
pub const USER_COLUMNS: &str = "u.id, u.email, u.active, u.webhook_token_prefix, u.token_rotated_at, \
     u.created_at, u.updated_at, s.id AS sub_id, s.strategy_id AS sub_strategy_id, s.status AS sub_status, \
     s.expires_at AS sub_expires_at, s.size_multiplier AS sub_size_multiplier, s.max_qty AS sub_max_qty, \
     s.payment_ref AS sub_payment_ref, s.activated_at AS sub_activated_at, \
     s.activated_by AS sub_activated_by, s.updated_at AS sub_updated_at, \
     s.leverage AS sub_leverage, s.margin_mode AS sub_margin_mode, \
     humbex_subscription_active(s.status, s.expires_at) AS sub_active_now";

/// One user by id ($1), as [`USER_COLUMNS`].
pub static GET: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {USER_COLUMNS} FROM users u LEFT JOIN subscriptions s ON s.user_id = u.id WHERE u.id = $1"
    )
});

/// Every user, oldest first, as [`USER_COLUMNS`].
pub static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {USER_COLUMNS} FROM users u LEFT JOIN subscriptions s ON s.user_id = u.id \
         ORDER BY u.created_at, u.id"
    )
});

/// $1 id, $2 email, $3 token digest, $4 token prefix.
pub const INSERT: &str = "INSERT INTO users (id, email, webhook_token_digest, webhook_token_prefix) \
     VALUES ($1, $2, $3, $4) RETURNING created_at";

/// $1 id, $2 new token digest, $3 its prefix.
pub const ROTATE_TOKEN: &str = "UPDATE users SET webhook_token_digest = $2, webhook_token_prefix = $3, \
     token_rotated_at = now(), updated_at = now() WHERE id = $1 RETURNING token_rotated_at";

pub const EXISTS: &str = "SELECT 1 AS found FROM users WHERE id = $1";

pub const ID_BY_TOKEN: &str = "SELECT id FROM users WHERE webhook_token_digest = $1";

pub const COUNT: &str = "SELECT count(*) AS users FROM users";

/// The paper demo user with an active subscription, in one statement: $1 user id, $2 token
/// digest, $3 token prefix, $4 subscription id.
pub const INSERT_DEMO: &str = "\
    WITH u AS (INSERT INTO users (id, email, webhook_token_digest, webhook_token_prefix) \
               VALUES ($1, 'demo@humbex.local', $2, $3) RETURNING id) \
    INSERT INTO subscriptions (id, user_id, status, activated_at, activated_by, payment_ref) \
    SELECT $4, id, 'active', now(), 'humbex up (paper demo)', 'paper-demo' FROM u";

/// Every statement above, for the test that prepares them all.
pub fn all() -> Vec<&'static str> {
    vec![
        GET.as_str(),
        LIST.as_str(),
        INSERT,
        ROTATE_TOKEN,
        EXISTS,
        ID_BY_TOKEN,
        COUNT,
        INSERT_DEMO,
    ]
}
