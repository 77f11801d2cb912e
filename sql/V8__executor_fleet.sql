-- Several executors share the accounts (docs/deployment.md#several-executors): every executor
-- announces itself with a heartbeat, and every account (an API key) is owned by one executor at a
-- time through a lease. The owner alone keeps the account's private stream and places its orders.

CREATE TABLE executors (
    id           text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    -- Counted in the fleet (for each one's fair share) until then.
    alive_until  timestamptz NOT NULL
);

-- Deleting an executor (a graceful stop) releases its accounts with it.
CREATE TABLE account_leases (
    api_key_id   uuid PRIMARY KEY REFERENCES api_keys (id) ON DELETE CASCADE,
    executor_id  text NOT NULL REFERENCES executors (id) ON DELETE CASCADE,
    leased_until timestamptz NOT NULL,
    acquired_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_leases_executor ON account_leases (executor_id);
