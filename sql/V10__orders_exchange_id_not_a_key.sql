-- An order's exchange id stops being a "key" column for row locking (docs/design.md#row-locks).
--
-- V6 made (api_key_id, exchange_order_id) a UNIQUE constraint. PostgreSQL treats the columns of
-- every non-partial unique index as key columns: an UPDATE that sets one (the settle writer and
-- the confirmer fill exchange_order_id in when Bybit answers) takes FOR UPDATE instead of FOR NO
-- KEY UPDATE, which conflicts with the FOR KEY SHARE lock that inserting a fill takes on its order
-- (the foreign key). The confirmer inserts fills and then updates orders in one transaction, so
-- it and the settle writer deadlocked under load, each time costing deadlock_timeout (1 s) and a
-- retry. A partial unique index enforces the same rule (NULLs never collided anyway) without
-- making the column a key.
ALTER TABLE orders DROP CONSTRAINT orders_account_exchange_id;
CREATE UNIQUE INDEX orders_account_exchange_id ON orders (api_key_id, exchange_order_id)
    WHERE exchange_order_id IS NOT NULL;
