-- The rule "this user may trade now", written once. Both functions are plain `LANGUAGE sql`,
-- STABLE, neither STRICT nor SECURITY DEFINER nor SET, and a single SELECT of one expression: so
-- PostgreSQL inlines them into every statement that calls them, and the planner still sees
-- `status = 'active'` (the partial index subscriptions_strategy_active stays usable).

-- Whether a subscription lets its user trade now. NULL when there is no subscription row (a
-- LEFT JOIN that found none).
CREATE FUNCTION humbex_subscription_active(sub_status text, sub_expires_at timestamptz)
    RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT sub_status = 'active' AND (sub_expires_at IS NULL OR sub_expires_at > now()) $$;

-- Why a user may not trade now, as a stable code the services word for their reader; NULL when
-- they may. `sub_status` is NULL when the user has no subscription row.
CREATE FUNCTION humbex_trading_refusal(user_active boolean, sub_status text, sub_expires_at timestamptz)
    RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN NOT user_active THEN 'user_deactivated'
                      WHEN sub_status IS NULL THEN 'no_subscription'
                      WHEN humbex_subscription_active(sub_status, sub_expires_at) THEN NULL
                      WHEN sub_status <> 'active' THEN 'subscription_inactive'
                      ELSE 'subscription_expired' END $$;
