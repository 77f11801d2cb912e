//! Statements on `subscriptions`. Whether one lets its user trade now is written once, in SQL
//! (`humbex_subscription_active`, `humbex_trading_refusal`, sql/V4), and called by the statements
//! that read it.

/// Replace a user's subscription. $1 new row id, $2 user, $3 strategy, $4 status, $5 expires_at,
/// $6 size_multiplier, $7 max_qty, $8 payment_ref, $9 whether the admin activates it (records when
/// and by whom, unless it already was active), $10 leverage, $11 margin_mode (defaults for its
/// signals).
pub const UPSERT: &str = "\
    INSERT INTO subscriptions (id, user_id, strategy_id, status, expires_at, size_multiplier, \
                               max_qty, payment_ref, activated_at, activated_by, leverage, margin_mode) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9 THEN now() END, CASE WHEN $9 THEN 'admin' END, \
            $10, $11) \
    ON CONFLICT (user_id) DO UPDATE SET \
        strategy_id = EXCLUDED.strategy_id, status = EXCLUDED.status, \
        expires_at = EXCLUDED.expires_at, size_multiplier = EXCLUDED.size_multiplier, \
        max_qty = EXCLUDED.max_qty, payment_ref = EXCLUDED.payment_ref, \
        leverage = EXCLUDED.leverage, margin_mode = EXCLUDED.margin_mode, \
        activated_at = CASE WHEN $9 AND subscriptions.status <> 'active' THEN now() \
                            WHEN $9 THEN subscriptions.activated_at END, \
        activated_by = CASE WHEN $9 AND subscriptions.status <> 'active' THEN 'admin' \
                            WHEN $9 THEN subscriptions.activated_by END, \
        updated_at = now()";

/// Every statement above, for the test that prepares them all.
pub fn all() -> Vec<&'static str> {
    vec![UPSERT]
}
