-- Notifications (docs/notifications.md): each user's destinations and chosen events, a durable
-- outbox written by triggers in the same transaction as the change it reports, one delivery row per
-- destination (so one slow channel never holds back another), and every attempt at sending.

CREATE TABLE notification_settings (
    user_id             uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- A numeric chat id (negative for groups) or a public @channel name.
    telegram_chat_id    text CHECK (telegram_chat_id ~ '^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$'),
    webhook_url         text CHECK (length(webhook_url) <= 2000 AND webhook_url ~ '^https?://'),
    -- The Standard Webhooks signing secret, sealed like an exchange key (ingest seals, the executor
    -- opens), bound to this row's user.
    webhook_secret_enc  bytea,
    email               text CHECK (email = lower(email) AND email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254),
    events              text[] NOT NULL DEFAULT '{}',
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((webhook_url IS NULL) = (webhook_secret_enc IS NULL))
);

CREATE TABLE notifications (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event           text NOT NULL CHECK (event IN ('order_filled', 'order_failed', 'key_unusable',
                        'take_profit_hit', 'stop_loss_hit', 'liquidation', 'subscription_expiring',
                        'subscription_expired', 'signal_rejected', 'executor_lagging', 'daily_summary')),
    -- NULL: an operational event with no user (the operator's destinations only).
    user_id         uuid REFERENCES users (id) ON DELETE CASCADE,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    data            jsonb NOT NULL DEFAULT '{}',
    -- Events found by a sweep (summaries, expiries, lag) carry a key, so a second sweep adds nothing.
    dedupe_key      text UNIQUE,
    -- Set when the sender has written this notification's deliveries.
    fanned_out_at   timestamptz
);
CREATE INDEX notifications_to_fan_out ON notifications (occurred_at) WHERE fanned_out_at IS NULL;

CREATE TABLE notification_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    notification_id  uuid NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    audience         text NOT NULL CHECK (audience IN ('user', 'ops')),
    channel          text NOT NULL CHECK (channel IN ('telegram', 'webhook', 'email')),
    -- The chat id, URL or address; never a secret.
    destination      text NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    claimed_by       text,
    claimed_until    timestamptz,
    last_error       text,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (notification_id, audience, channel),
    CHECK ((status = 'delivered') = (delivered_at IS NOT NULL))
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at)
    WHERE status = 'pending';

CREATE TABLE notification_attempts (
    id           bigserial PRIMARY KEY,
    delivery_id  uuid NOT NULL REFERENCES notification_deliveries (id) ON DELETE CASCADE,
    attempt      integer NOT NULL CHECK (attempt > 0),
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL DEFAULT now(),
    outcome      text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'refused')),
    detail       text CHECK (length(detail) <= 500)
);
CREATE INDEX notification_attempts_delivery ON notification_attempts (delivery_id, attempt);

-- An order that ends filled, failed or rejected reports itself in its own transaction, once: the
-- event follows the order's `origin` (V6), so the fill of a take-profit, stop-loss, trailing-stop,
-- liquidation or ADL order the exchange created is that event and not also an `order_filled` (the
-- entry it closes was reported when it filled). Such orders have no signal of their own
-- (`signal_id` is the one that opened the position, or NULL); a break-even or manual order is an
-- ordinary `order_filled`. See docs/notifications.md.
CREATE FUNCTION humbex_outbox_order() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ev text;
BEGIN
    IF NEW.status = 'filled' THEN
        ev := CASE NEW.origin WHEN 'take_profit' THEN 'take_profit_hit'
                              WHEN 'stop_loss' THEN 'stop_loss_hit'
                              WHEN 'trailing_stop' THEN 'stop_loss_hit'
                              WHEN 'liquidation' THEN 'liquidation'
                              WHEN 'adl' THEN 'liquidation'
                              ELSE 'order_filled' END;
    ELSIF NEW.status IN ('failed', 'rejected') THEN
        ev := 'order_failed';
    ELSE
        RETURN NULL;
    END IF;
    INSERT INTO notifications (event, user_id, data)
    SELECT ev, NEW.user_id, jsonb_build_object(
        'order_id', NEW.id, 'signal_id', NEW.signal_id, 'api_key_id', NEW.api_key_id,
        'account', k.label, 'symbol', NEW.symbol, 'side', NEW.side, 'qty', NEW.qty::text,
        'filled_qty', NEW.filled_qty::text, 'avg_price', NEW.avg_price::text, 'fee', NEW.fee::text,
        'closed_pnl', NEW.closed_pnl::text, 'status', NEW.status, 'error_code', NEW.error_code,
        'error', NEW.error, 'origin', NEW.origin)
    FROM (SELECT 1) one LEFT JOIN api_keys k ON k.id = NEW.api_key_id;
    RETURN NULL;
END $$;

CREATE TRIGGER orders_outbox_insert AFTER INSERT ON orders
    FOR EACH ROW WHEN (NEW.status IN ('filled', 'failed', 'rejected'))
    EXECUTE FUNCTION humbex_outbox_order();
CREATE TRIGGER orders_outbox_status AFTER UPDATE OF status ON orders
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('filled', 'failed', 'rejected'))
    EXECUTE FUNCTION humbex_outbox_order();

-- A key marked unusable reports itself once (the first reason is the one kept).
CREATE FUNCTION humbex_outbox_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notifications (event, user_id, data)
    VALUES ('key_unusable', NEW.user_id, jsonb_build_object(
        'api_key_id', NEW.id, 'account', NEW.label, 'key', NEW.api_key_masked,
        'reason', NEW.unusable_reason));
    RETURN NULL;
END $$;

CREATE TRIGGER api_keys_outbox_unusable AFTER UPDATE OF unusable_at ON api_keys
    FOR EACH ROW WHEN (OLD.unusable_at IS NULL AND NEW.unusable_at IS NOT NULL)
    EXECUTE FUNCTION humbex_outbox_key();

-- A rejected signal reports itself to its user (a strategy's signal has none: operator only).
CREATE FUNCTION humbex_outbox_signal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notifications (event, user_id, data)
    VALUES ('signal_rejected', NEW.user_id, jsonb_build_object(
        'signal_id', NEW.id, 'strategy_id', NEW.strategy_id, 'symbol', NEW.symbol,
        'action', NEW.action, 'reason', NEW.reject_reason));
    RETURN NULL;
END $$;

CREATE TRIGGER signals_outbox_rejected AFTER UPDATE OF status ON signals
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status = 'rejected')
    EXECUTE FUNCTION humbex_outbox_signal();
CREATE TRIGGER signals_outbox_rejected_insert AFTER INSERT ON signals
    FOR EACH ROW WHEN (NEW.status = 'rejected')
    EXECUTE FUNCTION humbex_outbox_signal();
