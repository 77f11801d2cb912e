-- Executor support: signal claims are leases (taken over only once expired), keys can be marked
-- unusable, orders keep retry bookkeeping, and every order status change is announced.

ALTER TABLE signals
    ADD COLUMN claimed_by     text,
    ADD COLUMN claimed_until  timestamptz,
    ADD COLUMN attempts       integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    ADD COLUMN processed_at   timestamptz;

ALTER TABLE api_keys
    ADD COLUMN unusable_reason  text,
    ADD COLUMN unusable_at      timestamptz;

ALTER TABLE orders
    ADD COLUMN attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    ADD COLUMN next_attempt_at  timestamptz;
CREATE INDEX orders_open ON orders (created_at) WHERE status IN ('pending', 'submitted', 'new', 'partially_filled');

-- humbex_orders: payload = order id, sent in the same transaction as the change.
CREATE FUNCTION humbex_notify_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('humbex_orders', NEW.id::text);
    RETURN NULL;
END $$;

CREATE TRIGGER orders_notify_insert AFTER INSERT ON orders
    FOR EACH ROW EXECUTE FUNCTION humbex_notify_order();
CREATE TRIGGER orders_notify_status AFTER UPDATE OF status ON orders
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION humbex_notify_order();
