-- Trading language v2 on the record side: orders carry how they were placed and what protects
-- them, orders the exchange or the user created are recorded too (no orderLinkId, no signal of
-- their own), positions are kept per account and symbol from the private stream, and break-even
-- watches live here so they fire once and survive a restart (docs/trading-v2-executor.md).

ALTER TABLE orders
    -- Who created the order: HUMBEX for a signal, or the exchange/user (Bybit's createType).
    ADD COLUMN origin          text NOT NULL DEFAULT 'signal'
                               CHECK (origin IN ('signal', 'take_profit', 'stop_loss', 'trailing_stop',
                                                 'break_even', 'liquidation', 'adl', 'manual')),
    -- Which part of its signal's trade: a target sync may need a reduce-only leg and an opening leg.
    ADD COLUMN leg             text NOT NULL DEFAULT 'single' CHECK (leg IN ('single', 'reduce', 'open')),
    ADD COLUMN order_type      text NOT NULL DEFAULT 'market' CHECK (order_type IN ('market', 'limit')),
    ADD COLUMN limit_price     numeric(38, 8) CHECK (limit_price > 0),
    ADD COLUMN time_in_force   text CHECK (time_in_force IN ('gtc', 'ioc', 'fok', 'post_only')),
    ADD COLUMN trigger_price   numeric(38, 8) CHECK (trigger_price > 0),
    -- Protection as set on the exchange (prices; a percent is resolved from the fill price).
    ADD COLUMN take_profit     numeric(38, 8) CHECK (take_profit > 0),
    ADD COLUMN stop_loss       numeric(38, 8) CHECK (stop_loss > 0),
    -- Trailing distance in price units.
    ADD COLUMN trailing_stop   numeric(38, 8) CHECK (trailing_stop > 0),
    ADD COLUMN leverage        numeric(6, 2) CHECK (leverage >= 1),
    -- Realised PnL of an order that reduced a position (Bybit's closedPnl); NULL for one that opened.
    ADD COLUMN closed_pnl      numeric(38, 8),
    -- cancel_after_secs: the durable timer. Set when the order is submitted, swept by the executor.
    ADD COLUMN cancel_after_secs integer CHECK (cancel_after_secs > 0),
    ADD COLUMN cancel_at       timestamptz,
    -- Protection set after the fill (percent TP/SL, trailing stop, break-even): whether it is
    -- needed, when it was set, and how long the position was unprotected.
    ADD COLUMN protect_after_fill boolean NOT NULL DEFAULT false,
    ADD COLUMN protected_at    timestamptz,
    ADD COLUMN unprotected_ms  bigint CHECK (unprotected_ms >= 0),
    ALTER COLUMN signal_id DROP NOT NULL,
    ALTER COLUMN order_link_id DROP NOT NULL,
    -- HUMBEX's own orders always have their signal and link id; the others are found by the
    -- exchange's order id on their account.
    ADD CONSTRAINT orders_signal_origin CHECK (origin <> 'signal' OR (signal_id IS NOT NULL AND order_link_id IS NOT NULL)),
    ADD CONSTRAINT orders_foreign_identified CHECK (origin = 'signal' OR (exchange_order_id IS NOT NULL AND api_key_id IS NOT NULL)),
    ADD CONSTRAINT orders_limit_price CHECK ((order_type = 'limit') = (limit_price IS NOT NULL) OR origin <> 'signal');

-- Exactly once per signal, account and leg (was: per signal and account), for HUMBEX's own
-- orders: an exchange-created order links to the signal that opened its position too.
ALTER TABLE orders DROP CONSTRAINT orders_signal_id_user_id_key;
CREATE UNIQUE INDEX orders_signal_user_leg ON orders (signal_id, user_id, leg) WHERE origin = 'signal';
-- An exchange-created order is recorded once per account, whatever the order of its pushes.
ALTER TABLE orders ADD CONSTRAINT orders_account_exchange_id UNIQUE (api_key_id, exchange_order_id);

CREATE INDEX orders_cancel_due ON orders (cancel_at)
    WHERE cancel_at IS NOT NULL AND status IN ('pending', 'submitted', 'new', 'partially_filled');
CREATE INDEX orders_closed_by_user ON orders (user_id, filled_at) WHERE closed_pnl IS NOT NULL;
CREATE INDEX orders_by_signal ON orders (signal_id, created_at);

-- One row per account and symbol (one-way mode: one position per symbol), from the `position` topic.
CREATE TABLE positions (
    api_key_id           uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    user_id              uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    symbol               text NOT NULL CHECK (symbol ~ '^[A-Z0-9]{2,20}$'),
    -- buy = long, sell = short, none = flat.
    side                 text NOT NULL CHECK (side IN ('buy', 'sell', 'none')),
    size                 numeric(38, 8) NOT NULL CHECK (size >= 0),
    avg_entry_price      numeric(38, 8),
    mark_price           numeric(38, 8),
    unrealised_pnl       numeric(38, 8),
    leverage             numeric(6, 2),
    take_profit          numeric(38, 8),
    stop_loss            numeric(38, 8),
    trailing_stop        numeric(38, 8),
    -- The signal whose order opened the position: exchange-created orders on it link there.
    opened_by_signal_id  uuid REFERENCES signals (id),
    -- Bybit's position sequence: an older push never overwrites a newer one.
    seq                  bigint,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, symbol),
    CHECK ((side = 'none') = (size = 0))
);
CREATE INDEX positions_user ON positions (user_id, symbol);

-- Break-even watches: one per account and symbol, armed when the entry is known.
CREATE TABLE break_even (
    api_key_id     uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    symbol         text NOT NULL CHECK (symbol ~ '^[A-Z0-9]{2,20}$'),
    signal_id      uuid NOT NULL REFERENCES signals (id),
    -- The position's side: buy = long.
    side           text NOT NULL CHECK (side IN ('buy', 'sell')),
    entry_price    numeric(38, 8) NOT NULL CHECK (entry_price > 0),
    trigger_price  numeric(38, 8) NOT NULL CHECK (trigger_price > 0),
    stop_price     numeric(38, 8) NOT NULL CHECK (stop_price > 0),
    -- armed → moving (claimed; until moving_until) → moved | protected (the stop was already
    -- better) | failed (refused: error_code/error); a crash while moving re-arms after the claim.
    status         text NOT NULL DEFAULT 'armed'
                   CHECK (status IN ('armed', 'moving', 'moved', 'protected', 'failed')),
    moving_until   timestamptz,
    error_code     text,
    error          text,
    armed_at       timestamptz NOT NULL DEFAULT now(),
    fired_at       timestamptz,
    PRIMARY KEY (api_key_id, symbol),
    CHECK ((status = 'moving') = (moving_until IS NOT NULL))
);
