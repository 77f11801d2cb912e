-- HUMBEX schema: users, strategies, subscriptions, encrypted API keys, signals, orders, fills.
-- The database guards itself: enums are CHECKed, quantities are positive numerics (never floats),
-- every reference is a foreign key, and every idempotency rule is a unique key.

CREATE TABLE users (
    id                    uuid PRIMARY KEY,
    email                 text NOT NULL UNIQUE
                          CHECK (email = lower(email) AND email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254),
    active                boolean NOT NULL DEFAULT true,
    -- Only a SHA-256 digest of the webhook token is kept, plus a short prefix for display.
    webhook_token_digest  bytea NOT NULL UNIQUE CHECK (length(webhook_token_digest) = 32),
    webhook_token_prefix  text NOT NULL,
    token_rotated_at      timestamptz NOT NULL DEFAULT now(),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE strategies (
    id                    uuid PRIMARY KEY,
    name                  text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    active                boolean NOT NULL DEFAULT true,
    webhook_token_digest  bytea NOT NULL UNIQUE CHECK (length(webhook_token_digest) = 32),
    webhook_token_prefix  text NOT NULL,
    token_rotated_at      timestamptz NOT NULL DEFAULT now(),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- One subscription per user: its status decides whether the user trades at all, and an optional
-- strategy makes the user follow that strategy's signals.
CREATE TABLE subscriptions (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    strategy_id      uuid REFERENCES strategies (id),
    status           text NOT NULL CHECK (status IN ('active', 'inactive')),
    expires_at       timestamptz,
    size_multiplier  numeric(20, 8) NOT NULL DEFAULT 1 CHECK (size_multiplier > 0),
    max_qty          numeric(38, 8) CHECK (max_qty > 0),
    payment_ref      text CHECK (length(payment_ref) <= 200),
    activated_at     timestamptz,
    activated_by     text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_strategy_active ON subscriptions (strategy_id) WHERE status = 'active';

-- Exchange credentials, each column sealed with AES-256-GCM. enc_key_id repeats the key id inside
-- both blobs so that a rewrap can find the rows still on an old key.
CREATE TABLE api_keys (
    id                      uuid PRIMARY KEY,
    user_id                 uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    exchange                text NOT NULL DEFAULT 'bybit' CHECK (exchange IN ('bybit')),
    label                   text NOT NULL DEFAULT '' CHECK (length(label) <= 100),
    api_key_enc             bytea NOT NULL,
    api_secret_enc          bytea NOT NULL,
    enc_key_id              integer NOT NULL CHECK (enc_key_id > 0),
    api_key_masked          text NOT NULL,
    permissions             jsonb,
    permissions_checked_at  timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    revoked_at              timestamptz
);
CREATE INDEX api_keys_user_usable ON api_keys (user_id) WHERE revoked_at IS NULL;
CREATE INDEX api_keys_enc_key_id ON api_keys (enc_key_id);

CREATE TABLE signals (
    id                 uuid PRIMARY KEY,
    received_at        timestamptz NOT NULL DEFAULT now(),
    source             text NOT NULL CHECK (source IN ('signed', 'tradingview')),
    -- The token's owner: a user (the signal targets that user) or a strategy (it fans out).
    user_id            uuid REFERENCES users (id),
    strategy_id        uuid REFERENCES strategies (id),
    action             text NOT NULL CHECK (action IN ('buy', 'sell', 'close')),
    symbol             text NOT NULL CHECK (symbol ~ '^[A-Z0-9]{2,20}$'),
    quantity           numeric(38, 8) CHECK (quantity > 0),
    client_id          text CHECK (length(client_id) BETWEEN 1 AND 128),
    price              numeric(38, 8) CHECK (price > 0),
    signal_time        timestamptz,
    comment            text CHECK (length(comment) <= 1000),
    -- The body as received, with the token's value replaced by its display prefix.
    raw_body           text NOT NULL,
    status             text NOT NULL DEFAULT 'received'
                       CHECK (status IN ('received', 'processing', 'done', 'rejected')),
    reject_reason      text,
    -- What made this signal unique: client:<id>, webhook-id:<id> or body:<sha256>.
    idempotency_key    text NOT NULL UNIQUE,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (num_nonnulls(user_id, strategy_id) = 1),
    CHECK (quantity IS NOT NULL OR action = 'close'),
    CHECK ((status = 'rejected') = (reject_reason IS NOT NULL))
);
CREATE INDEX signals_received ON signals (received_at DESC, id DESC);
CREATE INDEX signals_waiting ON signals (received_at) WHERE status IN ('received', 'processing');

CREATE TABLE orders (
    id                 uuid PRIMARY KEY,
    signal_id          uuid NOT NULL REFERENCES signals (id),
    user_id            uuid NOT NULL REFERENCES users (id),
    api_key_id         uuid REFERENCES api_keys (id),
    order_link_id      text NOT NULL UNIQUE CHECK (length(order_link_id) BETWEEN 1 AND 36),
    exchange_order_id  text,
    symbol             text NOT NULL CHECK (symbol ~ '^[A-Z0-9]{2,20}$'),
    side               text NOT NULL CHECK (side IN ('buy', 'sell')),
    qty                numeric(38, 8) CHECK (qty > 0),
    reduce_only        boolean NOT NULL DEFAULT false,
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'submitted', 'new', 'partially_filled', 'filled',
                                         'cancelled', 'rejected', 'skipped', 'failed')),
    error_code         text,
    error              text,
    avg_price          numeric(38, 8),
    filled_qty         numeric(38, 8) NOT NULL DEFAULT 0 CHECK (filled_qty >= 0),
    fee                numeric(38, 8) NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    submitted_at       timestamptz,
    acknowledged_at    timestamptz,
    filled_at          timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    -- Exactly one order per signal and target account: the database refuses a second.
    UNIQUE (signal_id, user_id),
    CHECK (qty IS NOT NULL OR status = 'skipped'),
    CHECK (status <> 'skipped' OR error IS NOT NULL)
);
CREATE INDEX orders_by_status ON orders (status, created_at DESC, id DESC);
CREATE INDEX orders_created ON orders (created_at DESC, id DESC);

CREATE TABLE fills (
    exec_id     text PRIMARY KEY,
    order_id    uuid NOT NULL REFERENCES orders (id),
    qty         numeric(38, 8) NOT NULL CHECK (qty > 0),
    price       numeric(38, 8) NOT NULL CHECK (price > 0),
    fee         numeric(38, 8) NOT NULL DEFAULT 0,
    exec_time   timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX fills_order ON fills (order_id, exec_time);
