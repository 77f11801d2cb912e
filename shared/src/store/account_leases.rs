//! Statements on `executors` and `account_leases` (sql/V8): the fleet's heartbeats and which
//! executor owns each account. An account is owned through a lease that its owner renews; an
//! expired lease is anyone's to take. See docs/deployment.md#several-executors.

use std::sync::LazyLock;

use crate::api_key_store::TRADABLE;

/// Announce executor $1 alive for $2 seconds. At its first heartbeat the row is inserted and the
/// fleet is told (`*`), so the others give back what is above their new fair share now rather than
/// at their next pass. Returns `joined`: whether this was the first.
pub const HEARTBEAT: &str = "\
    WITH up AS ( \
        INSERT INTO executors (id, alive_until) VALUES ($1, now() + make_interval(secs => $2)) \
        ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), alive_until = EXCLUDED.alive_until \
        RETURNING (xmax = 0) AS joined) \
    SELECT joined, (SELECT count(*) FROM (SELECT pg_notify('humbex_accounts', '*') \
                                          FROM up WHERE joined) n) AS notified \
    FROM up";

/// Forget executors dead for more than a day (their leases go with them; they expired long ago).
pub const PURGE_DEAD: &str = "DELETE FROM executors WHERE alive_until < now() - interval '1 day'";

/// The fleet as one executor sees it: `live` executors and the `accounts` that can trade now.
pub static FLEET: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT (SELECT count(*) FROM executors WHERE alive_until > now()) AS live, \
                (SELECT count(*) FROM {TRADABLE}) AS accounts"
    )
});

/// A graceful stop of executor $1: its row goes, and its leases with it (foreign key), and every
/// other executor is told to take its share now.
pub const STOP: &str = "\
    WITH gone AS (DELETE FROM executors WHERE id = $1 RETURNING id) \
    SELECT count(*) AS stopped, (SELECT count(*) FROM (SELECT pg_notify('humbex_accounts', '*') \
                                                       FROM gone) n) AS notified \
    FROM gone";

/// Executor $1's leases on accounts that can no longer trade (revoked, unusable, subscription
/// ended) are dropped; returns their key ids.
pub static DROP_UNTRADABLE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "DELETE FROM account_leases l WHERE l.executor_id = $1 \
           AND l.api_key_id NOT IN (SELECT k.id FROM {TRADABLE}) \
         RETURNING l.api_key_id"
    )
});

/// Executor $1 extends every lease it still holds by $2 seconds; returns their key ids. A lease
/// that ran out but that nobody took is still its own: it is renewed too.
pub const RENEW: &str = "\
    UPDATE account_leases SET leased_until = now() + make_interval(secs => $2) \
    WHERE executor_id = $1 RETURNING api_key_id";

/// Executor $1 takes up to $3 tradable accounts that nobody holds (or whose lease ran out) for $2
/// seconds; returns their key ids. Each executor prefers different accounts (the order is a hash
/// of the executor and the key: rendezvous hashing), so executors claiming at once rarely
/// compete; when they do, the conflict clause lets exactly one of them have the account.
pub static CLAIM_SHARE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH candidates AS ( \
             SELECT k.id FROM {TRADABLE} \
               AND NOT EXISTS (SELECT 1 FROM account_leases l \
                               WHERE l.api_key_id = k.id AND l.leased_until >= now()) \
             ORDER BY md5($1 || k.id::text) \
             LIMIT $3) \
         INSERT INTO account_leases (api_key_id, executor_id, leased_until) \
         SELECT id, $1, now() + make_interval(secs => $2) FROM candidates \
         ON CONFLICT (api_key_id) DO UPDATE \
             SET executor_id = EXCLUDED.executor_id, leased_until = EXCLUDED.leased_until, acquired_at = now() \
             WHERE account_leases.leased_until < now() \
         RETURNING api_key_id"
    )
});

/// The live executor other than $1 holding the fewest accounts: `id` and `held`. The one a
/// rebalance hands accounts to.
pub const LEAST_LOADED: &str = "\
    SELECT e.id, count(l.api_key_id) AS held FROM executors e \
    LEFT JOIN account_leases l ON l.executor_id = e.id AND l.leased_until >= now() \
    WHERE e.alive_until > now() AND e.id <> $1 \
    GROUP BY e.id ORDER BY held, e.id LIMIT 1";

/// Executor $1 hands accounts $2 (above its fair share) straight to executor $4, leased for $3
/// seconds, and tells the fleet (`*`: a rare event, so every executor runs a pass); an account is
/// never left without an owner on the way, so no claim can take it back in between. Returns how
/// many moved.
pub const HAND_TO: &str = "\
    WITH moved AS ( \
        UPDATE account_leases SET executor_id = $4, leased_until = now() + make_interval(secs => $3), \
               acquired_at = now() \
        WHERE executor_id = $1 AND api_key_id = ANY($2) \
        RETURNING api_key_id) \
    SELECT count(*) AS moved, \
           (SELECT count(*) FROM (SELECT pg_notify('humbex_accounts', '*') \
                                  WHERE EXISTS (SELECT 1 FROM moved)) n) AS notified \
    FROM moved";

/// Executor $1 has order rows of accounts $2 to send: it takes (for $3 seconds) those nobody
/// holds or whose lease ran out, keeps its own, and tells the owner of each other account to send
/// its pending orders now. Returns `mine`, the accounts it owns now (NULL when none), and how many
/// owners were told.
pub const ROUTE: &str = "\
    WITH wanted AS (SELECT DISTINCT unnest($2::uuid[]) AS id), \
    taken AS ( \
        INSERT INTO account_leases (api_key_id, executor_id, leased_until) \
        SELECT id, $1, now() + make_interval(secs => $3) FROM wanted \
        ON CONFLICT (api_key_id) DO UPDATE \
            SET executor_id = EXCLUDED.executor_id, leased_until = EXCLUDED.leased_until \
            WHERE account_leases.leased_until < now() OR account_leases.executor_id = EXCLUDED.executor_id \
        RETURNING api_key_id), \
    owners AS ( \
        SELECT DISTINCT l.executor_id FROM account_leases l JOIN wanted w ON w.id = l.api_key_id \
        WHERE l.executor_id <> $1 AND l.leased_until >= now() \
          AND l.api_key_id NOT IN (SELECT api_key_id FROM taken)) \
    SELECT (SELECT array_agg(api_key_id) FROM taken) AS mine, \
           (SELECT count(*) FROM (SELECT pg_notify('humbex_accounts', executor_id) FROM owners) n) AS notified";

/// Every statement above, for the test that prepares them all.
pub fn all() -> Vec<&'static str> {
    vec![
        HEARTBEAT,
        PURGE_DEAD,
        FLEET.as_str(),
        STOP,
        DROP_UNTRADABLE.as_str(),
        RENEW,
        CLAIM_SHARE.as_str(),
        LEAST_LOADED,
        HAND_TO,
        ROUTE,
    ]
}
