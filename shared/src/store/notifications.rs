//! Statements on `notification_settings`, `notifications` (the outbox), `notification_deliveries`
//! and `notification_attempts` (sql/V7). The outbox rows of order, key and signal events are written
//! by the triggers of sql/V7, in the transaction of the change they report; the rows found by a
//! sweep (lag, expiries, daily summaries) by the statements below. See docs/notifications.md.

use std::sync::LazyLock;

/// A user's settings ($1), without the sealed secret's bytes.
pub const GET_SETTINGS: &str = "SELECT user_id, telegram_chat_id, webhook_url, email, events, updated_at \
     FROM notification_settings WHERE user_id = $1";

/// Replace a user's settings: $1 user, $2 chat, $3 URL, $4 a freshly sealed secret (NULL when $3
/// is), $5 email, $6 events. The stored secret is kept while the URL stays the same, replaced by $4
/// when the URL is new or changed, dropped with the URL; `secret_issued` says whether $4 was kept.
pub const PUT_SETTINGS: &str = "\
    INSERT INTO notification_settings AS s (user_id, telegram_chat_id, webhook_url, webhook_secret_enc, email, events) \
    VALUES ($1, $2, $3, $4, $5, $6) \
    ON CONFLICT (user_id) DO UPDATE SET \
        telegram_chat_id = EXCLUDED.telegram_chat_id, \
        webhook_url = EXCLUDED.webhook_url, \
        webhook_secret_enc = CASE WHEN EXCLUDED.webhook_url IS NULL THEN NULL \
                                  WHEN s.webhook_url IS NOT DISTINCT FROM EXCLUDED.webhook_url \
                                       THEN s.webhook_secret_enc \
                                  ELSE EXCLUDED.webhook_secret_enc END, \
        email = EXCLUDED.email, events = EXCLUDED.events, updated_at = now() \
    RETURNING user_id, telegram_chat_id, webhook_url, email, events, updated_at, \
              ($4::bytea IS NOT NULL AND webhook_secret_enc = $4::bytea) AS secret_issued";

/// Up to $1 notifications not yet fanned out, locked so two senders never fan out one twice, with
/// their user's settings.
pub const CLAIM_TO_FAN_OUT: &str = "\
    SELECT n.id, n.event, n.user_id, s.telegram_chat_id, s.webhook_url, s.email, s.events \
    FROM notifications n LEFT JOIN notification_settings s ON s.user_id = n.user_id \
    WHERE n.fanned_out_at IS NULL \
    ORDER BY n.occurred_at, n.id LIMIT $1 \
    FOR UPDATE OF n SKIP LOCKED";

/// One delivery per ($1 notification, $2 audience, $3 channel, $4 destination).
pub const INSERT_DELIVERIES: &str = "\
    INSERT INTO notification_deliveries (notification_id, audience, channel, destination) \
    SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[]) \
    ON CONFLICT (notification_id, audience, channel) DO NOTHING";

pub const MARK_FANNED_OUT: &str = "UPDATE notifications SET fanned_out_at = now() WHERE id = ANY($1)";

/// Lease to claim $1 (the sender's id and a token of this claim) for $2 seconds up to $3 due deliveries, at most $4 per webhook destination
/// (sent one by one) and $5 per Telegram chat or mailbox (sent as one message, so a burst becomes
/// one message), with their notification.
pub const CLAIM_DUE: &str = "\
    WITH ranked AS ( \
        SELECT id, channel, row_number() OVER (PARTITION BY channel, destination \
                                               ORDER BY next_attempt_at, id) AS rn \
        FROM notification_deliveries \
        WHERE status = 'pending' AND next_attempt_at <= now() \
          AND (claimed_until IS NULL OR claimed_until < now())), \
    due AS ( \
        SELECT d.id FROM notification_deliveries d JOIN ranked r ON r.id = d.id \
        WHERE r.rn <= CASE WHEN r.channel = 'webhook' THEN $4::int8 ELSE $5::int8 END \
          AND d.status = 'pending' AND (d.claimed_until IS NULL OR d.claimed_until < now()) \
        ORDER BY d.next_attempt_at, d.id LIMIT $3 \
        FOR UPDATE OF d SKIP LOCKED) \
    UPDATE notification_deliveries d \
    SET claimed_by = $1, claimed_until = now() + make_interval(secs => $2) \
    FROM due, notifications n \
    WHERE d.id = due.id AND n.id = d.notification_id \
    RETURNING d.id, d.notification_id, d.audience, d.channel, d.destination, d.attempts, \
              n.event, n.user_id, n.occurred_at, n.data";

/// The sealed webhook secret of user $1.
pub const WEBHOOK_SECRET: &str = "SELECT webhook_secret_enc FROM notification_settings WHERE user_id = $1";

/// For `keys rewrap`: up to $2 sealed webhook secrets of users after $1, in user order, locked
/// (rows locked by someone else are skipped).
pub const LOCK_WEBHOOK_SECRETS: &str = "\
    SELECT user_id, webhook_secret_enc FROM notification_settings \
    WHERE webhook_secret_enc IS NOT NULL AND user_id > $1 \
    ORDER BY user_id LIMIT $2 FOR UPDATE SKIP LOCKED";

/// Replace user $1's sealed webhook secret with $2, only if it is still $3 (a secret issued again
/// meanwhile is left alone); the URL and the secret itself do not change.
pub const REPLACE_WEBHOOK_SECRET: &str = "\
    UPDATE notification_settings SET webhook_secret_enc = $2 \
    WHERE user_id = $1 AND webhook_secret_enc = $3";

/// Every sealed webhook secret (the key each is under is read from the blob).
pub const ALL_WEBHOOK_SECRETS: &str = "\
    SELECT webhook_secret_enc FROM notification_settings WHERE webhook_secret_enc IS NOT NULL";

/// Deliveries $1 were sent (attempt started at $2, $3 what the channel answered): delivered, each
/// attempt recorded, in one statement. Only rows still pending move, so a late duplicate answer
/// records nothing twice.
pub const MARK_DELIVERED: &str = "\
    WITH d AS ( \
        UPDATE notification_deliveries SET status = 'delivered', delivered_at = now(), \
               attempts = attempts + 1, claimed_by = NULL, claimed_until = NULL, last_error = NULL \
        WHERE id = ANY($1) AND status = 'pending' RETURNING id, attempts) \
    INSERT INTO notification_attempts (delivery_id, attempt, started_at, outcome, detail) \
    SELECT id, attempts, $2, 'delivered', left($3, 500) FROM d";

/// Deliveries $1 failed in a way worth retrying (started $2, $3 why): due again after
/// $4 × 2^attempts seconds (at most an hour, at least $6, the channel's own retry-after), or dead
/// once they reach $5 attempts. Returns `dead`, how many of them that attempt was the last of.
pub const MARK_RETRY: &str = "\
    WITH d AS ( \
        UPDATE notification_deliveries SET attempts = attempts + 1, last_error = left($3, 500), \
               claimed_by = NULL, claimed_until = NULL, \
               status = CASE WHEN attempts + 1 >= $5 THEN 'dead' ELSE 'pending' END, \
               next_attempt_at = now() + make_interval(secs => \
                   GREATEST($6::float8, LEAST(3600, $4::float8 * power(2, attempts)))) \
        WHERE id = ANY($1) AND status = 'pending' RETURNING id, attempts, status), \
    a AS ( \
        INSERT INTO notification_attempts (delivery_id, attempt, started_at, outcome, detail) \
        SELECT id, attempts, $2, 'retry', left($3, 500) FROM d) \
    SELECT count(*) FILTER (WHERE status = 'dead') AS dead FROM d";

/// Deliveries $1 were refused for good (started $2, $3 why): a bad destination is not retried.
pub const MARK_REFUSED: &str = "\
    WITH d AS ( \
        UPDATE notification_deliveries SET attempts = attempts + 1, last_error = left($3, 500), \
               claimed_by = NULL, claimed_until = NULL, status = 'dead' \
        WHERE id = ANY($1) AND status = 'pending' RETURNING id, attempts) \
    INSERT INTO notification_attempts (delivery_id, attempt, started_at, outcome, detail) \
    SELECT id, attempts, $2, 'refused', left($3, 500) FROM d";

/// Take deliveries $2 of claim $1 for a send that ends within $3 seconds, right before sending:
/// their lease is extended to cover the send, and only the rows this claim still holds are
/// returned. A delivery another claim took over after this one's lease ran out (a sender paced or
/// stalled past it) is not returned, so two senders never send it at once.
pub const TAKE_FOR_SEND: &str = "UPDATE notification_deliveries SET claimed_until = now() + make_interval(secs => $3) \
     WHERE id = ANY($2) AND claimed_by = $1 AND status = 'pending' RETURNING id";

/// Renew claim $1's leases on deliveries $2 for $3 seconds (a long send keeps its rows).
pub const RENEW: &str = "UPDATE notification_deliveries SET claimed_until = now() + make_interval(secs => $3) \
     WHERE id = ANY($2) AND claimed_by = $1 AND status = 'pending'";

/// Give back claim $3's leases on deliveries $1 without an attempt, due again in $2 seconds (the
/// rest of a webhook batch after its destination failed).
pub const RELEASE: &str = "UPDATE notification_deliveries SET claimed_by = NULL, claimed_until = NULL, \
     next_attempt_at = now() + make_interval(secs => $2) \
     WHERE id = ANY($1) AND claimed_by = $3 AND status = 'pending'";

/// Signals waiting longer than $1 seconds: one `executor_lagging` per hour at most.
pub const SWEEP_LAGGING: &str = "\
    INSERT INTO notifications (event, data, dedupe_key) \
    SELECT 'executor_lagging', \
           jsonb_build_object('pending', count(*), 'oldest_received_at', min(received_at), \
                              'threshold_secs', $1::float8), \
           'executor_lagging:' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24') \
    FROM signals \
    WHERE status IN ('received', 'processing') AND received_at < now() - make_interval(secs => $1::float8) \
    HAVING count(*) > 0 \
    ON CONFLICT (dedupe_key) DO NOTHING";

/// Active subscriptions ending within three days, once per expiry date; and those that ended in the
/// last week (older ones are not announced on a first start).
pub const SWEEP_SUBSCRIPTIONS: &str = "\
    INSERT INTO notifications (event, user_id, data, dedupe_key) \
    SELECT CASE WHEN s.expires_at > now() THEN 'subscription_expiring' ELSE 'subscription_expired' END, \
           s.user_id, jsonb_build_object('subscription_id', s.id, 'expires_at', s.expires_at), \
           CASE WHEN s.expires_at > now() THEN 'subscription_expiring:' ELSE 'subscription_expired:' END \
               || s.id || ':' || s.expires_at \
    FROM subscriptions s \
    WHERE s.status = 'active' AND s.expires_at IS NOT NULL \
      AND s.expires_at BETWEEN now() - interval '7 days' AND now() + interval '3 days' \
    ON CONFLICT (dedupe_key) DO NOTHING";

/// Yesterday's (UTC) summary of every user who had orders created or filled that day: trades
/// (orders created that day with a fill) and failures, and realised PnL, fees and closed trades of
/// the orders filled that day by the one PnL rule ([`super::orders::pnl_sums`], as the admin PnL
/// endpoints). Once per user and day.
pub static SWEEP_DAILY_SUMMARY: LazyLock<String> = LazyLock::new(|| {
    let pnl = super::orders::pnl_sums(
        "o.user_id",
        "o.user_id IS NOT NULL",
        "(SELECT day_from FROM d)",
        "(SELECT day_to FROM d)",
        "o.user_id",
    );
    format!(
        "WITH d AS (SELECT day, day::timestamp AT TIME ZONE 'UTC' AS day_from, \
                           (day + 1)::timestamp AT TIME ZONE 'UTC' AS day_to \
                    FROM (SELECT (now() AT TIME ZONE 'UTC')::date - 1 AS day) y), \
              p AS ({pnl}), \
              c AS (SELECT o.user_id, count(*) FILTER (WHERE o.filled_qty > 0) AS trades, \
                           count(*) FILTER (WHERE o.status IN ('failed', 'rejected')) AS failures \
                    FROM orders o, d WHERE o.created_at >= d.day_from AND o.created_at < d.day_to \
                    GROUP BY o.user_id) \
         INSERT INTO notifications (event, user_id, data, dedupe_key) \
         SELECT 'daily_summary', u.user_id, \
                jsonb_build_object('date', d.day::text, 'trades', COALESCE(c.trades, 0), \
                    'realised_pnl', COALESCE(p.realised_pnl, 0)::text, 'fees', COALESCE(p.fees, 0)::text, \
                    'closed_trades', COALESCE(p.closed_trades, 0), 'failures', COALESCE(c.failures, 0)), \
                'daily_summary:' || u.user_id || ':' || d.day \
         FROM d, (SELECT user_id FROM c UNION SELECT user_id FROM p) u \
         LEFT JOIN c ON c.user_id = u.user_id LEFT JOIN p ON p.user_id = u.user_id \
         ON CONFLICT (dedupe_key) DO NOTHING"
    )
});

/// Notifications fanned out more than 30 days ago with nothing left to send, with their deliveries
/// and attempts (ON DELETE CASCADE): the outbox does not grow for ever.
pub const SWEEP_PRUNE: &str = "\
    DELETE FROM notifications n \
    WHERE n.fanned_out_at < now() - interval '30 days' \
      AND NOT EXISTS (SELECT 1 FROM notification_deliveries d \
                      WHERE d.notification_id = n.id AND d.status = 'pending')";

/// Every statement above, for the test that prepares them all.
pub fn all() -> Vec<&'static str> {
    vec![
        GET_SETTINGS,
        PUT_SETTINGS,
        CLAIM_TO_FAN_OUT,
        INSERT_DELIVERIES,
        MARK_FANNED_OUT,
        CLAIM_DUE,
        TAKE_FOR_SEND,
        WEBHOOK_SECRET,
        LOCK_WEBHOOK_SECRETS,
        REPLACE_WEBHOOK_SECRET,
        ALL_WEBHOOK_SECRETS,
        MARK_DELIVERED,
        MARK_RETRY,
        MARK_REFUSED,
        RENEW,
        RELEASE,
        SWEEP_LAGGING,
        SWEEP_SUBSCRIPTIONS,
        &SWEEP_DAILY_SUMMARY,
        SWEEP_PRUNE,
    ]
}
