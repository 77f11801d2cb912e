-- The operator console (docs/console.md): its sign-in sessions, and the indexes its pages need to
-- render in milliseconds with 10,000 users and 1,000,000 signals (the bench's `console` scenario).

-- A signed-in browser. Only the SHA-256 digest of the cookie's value is kept, so a copy of this
-- table signs nobody in. The CSRF token is per session and useless without the cookie.
CREATE TABLE console_sessions (
    id_digest   bytea PRIMARY KEY CHECK (length(id_digest) = 32),
    csrf_token  text NOT NULL CHECK (length(csrf_token) BETWEEN 32 AND 128),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- The users list, oldest first, paged.
CREATE INDEX users_created ON users (created_at, id);
-- The signals table filtered by user, strategy or status, newest first.
CREATE INDEX signals_by_user ON signals (user_id, received_at DESC, id DESC) WHERE user_id IS NOT NULL;
CREATE INDEX signals_by_strategy ON signals (strategy_id, received_at DESC, id DESC)
    WHERE strategy_id IS NOT NULL;
CREATE INDEX signals_by_status ON signals (status, received_at DESC, id DESC);
-- The overview's "last fill seen", keys marked unusable and subscriptions about to expire.
CREATE INDEX fills_created ON fills (created_at DESC);
CREATE INDEX api_keys_unusable ON api_keys (unusable_at) WHERE unusable_at IS NOT NULL AND revoked_at IS NULL;
CREATE INDEX subscriptions_expiring ON subscriptions (expires_at)
    WHERE status = 'active' AND expires_at IS NOT NULL;
