//! Statements on `signals`: storing one from a webhook, claiming and leasing, and the admin reads.
//! Settling a signal with its orders' answers is one statement with the orders: see
//! `orders::SETTLE`.

use std::sync::LazyLock;

use tokio_postgres::Row;
use tokio_postgres::types::Json;

use crate::domain::signal_status;
use crate::domain::trade::{Leverage, MarginMode, StrategyDefaults, SubscriptionDefaults, TradeSpec};
use crate::token::TokenKind;

/// Columns and values shared by the user and the strategy statement ($2 … $11).
const FAST_INSERT_COLUMNS: &str =
    "id, source, action, symbol, quantity, client_id, price, signal_time, comment, raw_body";

fn submit_statement(kind: TokenKind) -> String {
    let (owner_cte, owner_column, key_owner) = match kind {
        TokenKind::User => (
            "SELECT u.id, humbex_trading_refusal(u.active, s.status, s.expires_at) AS refusal, \
                    s.expires_at \
             FROM users u LEFT JOIN subscriptions s ON s.user_id = u.id \
             WHERE u.webhook_token_digest = $1",
            "user_id",
            "user",
        ),
        _ => (
            "SELECT st.id, CASE WHEN NOT st.active THEN 'strategy_deactivated' END AS refusal, \
                    NULL::timestamptz AS expires_at \
             FROM strategies st WHERE st.webhook_token_digest = $1",
            "strategy_id",
            "strategy",
        ),
    };
    format!(
        "WITH owner AS ({owner_cte}), \
         ins AS ( \
             INSERT INTO signals ({FAST_INSERT_COLUMNS}, trade, {owner_column}, idempotency_key) \
             SELECT $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $14, owner.id, \
                    $12 || '{key_owner}:' || owner.id::text || ':' || $13 \
             FROM owner WHERE owner.refusal IS NULL \
             ON CONFLICT (idempotency_key) DO NOTHING \
             RETURNING id) \
         SELECT owner.id AS owner_id, owner.refusal, owner.expires_at, ins.id AS signal_id, \
                CASE WHEN ins.id IS NOT NULL THEN pg_notify('humbex_signals', ins.id::text) END AS notified \
         FROM owner LEFT JOIN ins ON true"
    )
}

/// The one-round-trip webhook statement for a user token: look the token up, apply the one
/// "may trade now" rule (`humbex_trading_refusal`, sql/V4), insert unless refused or the
/// idempotency key is taken, and notify. $1 token digest, $2 … $11 the signal, $12 the key's kind
/// prefix, $13 its value, $14 the v2 fields (`trade`, NULL for a v1 signal). Built once per process: the statement cache is keyed by this text.
pub static SUBMIT_USER: LazyLock<String> = LazyLock::new(|| submit_statement(TokenKind::User));

/// [`SUBMIT_USER`] for a strategy token (refused only when the strategy is deactivated).
pub static SUBMIT_STRATEGY: LazyLock<String> = LazyLock::new(|| submit_statement(TokenKind::Strategy));

/// Insert a signal whose owner is known and announce it; nothing when the key is taken. $14 is
/// `trade`.
pub const INSERT_AND_NOTIFY: &str = "\
    WITH ins AS ( \
        INSERT INTO signals (id, source, user_id, strategy_id, action, symbol, quantity, client_id, \
                             price, signal_time, comment, raw_body, idempotency_key, trade) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
        ON CONFLICT (idempotency_key) DO NOTHING \
        RETURNING id) \
    SELECT id, pg_notify('humbex_signals', id::text) AS notified FROM ins";

/// The signal holding an idempotency key ($1), and whether it is older than $2 seconds.
pub const FIND_BY_KEY: &str = "SELECT id, status, received_at < now() - make_interval(secs => $2) AS expired \
     FROM signals WHERE idempotency_key = $1";

/// Move an expired body-hash holder ($1) out of its key's ($2) way.
pub const RETIRE_KEY: &str = "UPDATE signals SET idempotency_key = idempotency_key || ':expired:' || id::text \
     WHERE id = $1 AND idempotency_key = $2";

/// A refused signal, kept for the audit trail: the fourteen values of [`INSERT_AND_NOTIFY`], then
/// $15 status and $16 reject reason.
pub const INSERT_REJECTED: &str = "\
    INSERT INTO signals (id, source, user_id, strategy_id, action, symbol, quantity, client_id, \
                         price, signal_time, comment, raw_body, idempotency_key, trade, status, \
                         reject_reason) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

/// Whether the plan of signal `alias` reads the account's position: a `close`, a
/// `target_position`, or `position_percent` sizing. Such a signal must be planned after every
/// earlier signal on its accounts has been placed (docs/trading-v2-executor.md#racing-alerts-for-one-account).
/// The partial index `signals_waiting_on_position` (sql/V11) repeats this text word for word, so
/// the planner can prove a query's `WHERE` implies it.
pub fn position_dependent(alias: &str) -> String {
    format!(
        "({alias}.action = 'close' OR COALESCE({alias}.trade ? 'target_position' \
         OR {alias}.trade ->> 'quantity_type' = 'position_percent', false))"
    )
}

/// Claims commit without waiting for the WAL flush (`synchronous_commit` off for that statement's
/// transaction only). Safe: a claim lost in a crash only means the signal is claimed again and finds
/// its order rows. The order rows, whose durability "never twice" rests on, are written by another
/// statement with the flush, and WAL is flushed in order, so a flushed order row implies its claim.
///
/// The same statement reads each claimed signal's targets (a lateral join over the claimed rows),
/// so the planner has everything after one round trip. Two branches rather than one `OR`, so each
/// uses its index: the token's user by primary key, a strategy's active subscribers by
/// `subscriptions_strategy_active`.
///
/// A position-dependent signal ([`position_dependent`]) is not claimable while it must wait
/// (`humbex_signal_must_wait`, sql/V13: the racing rule); other signals are never held back, and
/// the test comes after the cheap one, so the common path pays nothing for it: the rule is a
/// function, so not even its planning or set-up. The first, redundant term (a v1 signal other
/// than `close`) is for the planner: it estimates it from the column statistics, where the JSONB
/// test alone made it guess few rows pass and sort the whole waiting set (10 ms with 10,000
/// waiting) instead of reading `signals_waiting` in order up to the limit (0.3 ms).
pub static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "\
    WITH no_flush AS (SELECT set_config('synchronous_commit', 'off', true)), \
    next AS ( \
        SELECT s.id FROM signals s \
        WHERE (s.status = 'received' OR (s.status = 'processing' AND s.claimed_until < now())) \
          AND ($3::uuid[] IS NULL OR s.id = ANY($3)) \
          AND ((s.trade IS NULL AND s.action <> 'close') OR NOT {dependent} \
               OR NOT humbex_signal_must_wait(s.id, s.user_id, s.strategy_id, s.received_at)) \
        ORDER BY s.received_at \
        LIMIT $2 \
        FOR UPDATE SKIP LOCKED), \
    claimed AS ( \
        UPDATE signals s SET status = 'processing', claimed_by = $1, \
            claimed_until = now() + make_interval(secs => $4), attempts = s.attempts + 1, updated_at = now() \
        FROM next, no_flush WHERE s.id = next.id \
        RETURNING s.id, s.user_id, s.strategy_id, s.action, s.symbol, s.quantity, s.price, s.received_at, \
                  s.attempts, s.trade, s.signal_time) \
    SELECT c.id, c.user_id, c.strategy_id, c.action, c.symbol, c.quantity, c.price, c.received_at, c.attempts, \
           c.trade, c.signal_time, st.max_lag_secs AS strategy_max_lag_secs, st.leverage AS strategy_leverage, \
           t.user_id AS target_user_id, t.size_multiplier, t.max_qty, t.refusal, t.key_id, t.api_key_enc, \
           t.api_secret_enc, t.sub_leverage, t.sub_margin_mode \
    FROM claimed c \
    LEFT JOIN strategies st ON st.id = c.strategy_id \
    LEFT JOIN LATERAL ( \
        SELECT u.id AS user_id, COALESCE(s.size_multiplier, 1) AS size_multiplier, s.max_qty, \
               humbex_trading_refusal(u.active, s.status, s.expires_at) AS refusal, \
               s.leverage AS sub_leverage, s.margin_mode AS sub_margin_mode, \
               k.id AS key_id, k.api_key_enc, k.api_secret_enc \
        FROM users u \
        LEFT JOIN subscriptions s ON s.user_id = u.id \
        LEFT JOIN LATERAL ( \
            SELECT id, api_key_enc, api_secret_enc FROM api_keys \
            WHERE user_id = u.id AND revoked_at IS NULL AND unusable_at IS NULL \
            ORDER BY created_at DESC LIMIT 1) k ON true \
        WHERE u.id = c.user_id \
        UNION ALL \
        SELECT u.id, s.size_multiplier, s.max_qty, \
               humbex_trading_refusal(u.active, s.status, s.expires_at), s.leverage, s.margin_mode, \
               k.id, k.api_key_enc, k.api_secret_enc \
        FROM subscriptions s \
        JOIN users u ON u.id = s.user_id \
        LEFT JOIN LATERAL ( \
            SELECT id, api_key_enc, api_secret_enc FROM api_keys \
            WHERE user_id = u.id AND revoked_at IS NULL AND unusable_at IS NULL \
            ORDER BY created_at DESC LIMIT 1) k ON true \
        WHERE s.strategy_id = c.strategy_id AND s.status = 'active') t ON true \
    ORDER BY c.received_at, c.id, t.user_id",
        dependent = position_dependent("s"),
    )
});

/// Signals not yet finished and the age of the oldest, in seconds (0 when none), for the
/// `humbex_signals_pending` gauges; served by the `signals_waiting` partial index.
pub const PENDING: &str = "SELECT count(*) AS pending, \
        COALESCE(extract(epoch FROM clock_timestamp() - min(received_at)), 0)::float8 AS oldest_seconds \
     FROM signals WHERE status IN ('received', 'processing')";

/// Extend the leases of executor $1 on signals $2 by $3 seconds. Locked in id order first, all
/// before the update (the InitPlan, see [`super::orders::SETTLE`]), as the settle writer does, so
/// the two never deadlock.
pub const RENEW_LEASES: &str = "\
    WITH locked AS MATERIALIZED ( \
        SELECT id FROM signals WHERE id = ANY($2) ORDER BY id FOR NO KEY UPDATE) \
    UPDATE signals SET claimed_until = now() + make_interval(secs => $3) \
    WHERE id = ANY ((SELECT array_agg(id) FROM locked)::uuid[]) AND claimed_by = $1 AND status = 'processing'";

/// What the admin API shows of a signal.
pub const COLUMNS: &str = "id, received_at, source, user_id, strategy_id, action, symbol, quantity, \
     client_id, price, signal_time, comment, status, reject_reason, raw_body, trade";

/// A signal row's v2 fields (`trade`, as [`CLAIM`] and [`COLUMNS`] return it); a v1 signal's NULL
/// is the plain default.
pub fn trade_of(row: &Row) -> Result<TradeSpec, tokio_postgres::Error> {
    Ok(row
        .try_get::<_, Option<Json<TradeSpec>>>("trade")?
        .map(|json| json.0)
        .unwrap_or_default())
}

/// The claimed signal's strategy's defaults ([`CLAIM`]'s `strategy_*` columns; none for a user's
/// own signal).
pub fn strategy_defaults_of(row: &Row) -> Result<StrategyDefaults, Box<dyn std::error::Error + Send + Sync>> {
    let max_lag_secs: Option<i32> = row.try_get("strategy_max_lag_secs")?;
    Ok(StrategyDefaults {
        max_lag_secs: max_lag_secs.map(u32::try_from).transpose()?,
        leverage: leverage_of(row, "strategy_leverage")?,
    })
}

/// A claimed target's subscription defaults ([`CLAIM`]'s `sub_*` columns).
pub fn subscription_defaults_of(
    row: &Row,
) -> Result<SubscriptionDefaults, Box<dyn std::error::Error + Send + Sync>> {
    let margin_mode: Option<&str> = row.try_get("sub_margin_mode")?;
    Ok(SubscriptionDefaults {
        leverage: leverage_of(row, "sub_leverage")?,
        margin_mode: margin_mode
            .map(|m| {
                m.parse::<MarginMode>()
                    .map_err(|()| format!("unknown margin mode {m:?}"))
            })
            .transpose()?,
    })
}

/// A leverage column (numeric, CHECKed to Bybit's range) as the domain type.
pub fn leverage_of(
    row: &Row,
    column: &str,
) -> Result<Option<Leverage>, Box<dyn std::error::Error + Send + Sync>> {
    let value: Option<rust_decimal::Decimal> = row.try_get(column)?;
    Ok(value
        .map(|d| Leverage::parse(&d.normalize().to_string()))
        .transpose()?)
}

/// One signal by id ($1), as [`COLUMNS`].
pub static GET: LazyLock<String> = LazyLock::new(|| format!("SELECT {COLUMNS} FROM signals WHERE id = $1"));

/// `<column> = '<status>'`: a signal status as a literal, not a parameter. `signals_by_status`
/// holds finished signals only and `signals_waiting` the received and processing ones (sql/V13),
/// so the planner must see the status to prove which index holds it. Only the statuses of
/// [`signal_status::ALL`] are written into SQL text this way, never request text.
pub fn has_status(column: &str, status: &str) -> String {
    assert!(
        signal_status::ALL.contains(&status),
        "{status:?} is not a signal status"
    );
    format!("{column} = '{status}'")
}

/// Which signals a filtered page holds (the admin listing's query parameters).
#[derive(Debug, Default, Clone)]
pub struct SignalFilter {
    /// Only signals older than this one (the previous page's last).
    pub before: Option<uuid::Uuid>,
    pub user_id: Option<uuid::Uuid>,
    pub strategy_id: Option<uuid::Uuid>,
    /// One of the signal statuses.
    pub status: Option<&'static str>,
    /// Received at or after.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Received before.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

/// A filtered page of signals, newest first, as [`COLUMNS`], with its parameters: only the
/// conditions in use are in the text, so each combination gets a plan that uses its index
/// (`signals_by_user`, `signals_by_strategy`, `signals_by_status`: sql/V9 and V13) rather than one
/// generic plan for `$n IS NULL OR ...`. `limit` is the last parameter.
pub fn filtered_page<'a>(
    filter: &'a SignalFilter,
    limit: &'a i64,
) -> (String, Vec<&'a (dyn tokio_postgres::types::ToSql + Sync)>) {
    let mut conditions = Vec::new();
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
    fn next<'a>(
        params: &mut Vec<&'a (dyn tokio_postgres::types::ToSql + Sync)>,
        p: &'a (dyn tokio_postgres::types::ToSql + Sync),
    ) -> usize {
        params.push(p);
        params.len()
    }
    if let Some(before) = &filter.before {
        let n = next(&mut params, before);
        conditions.push(format!(
            "(received_at, id) < (SELECT received_at, id FROM signals WHERE id = ${n})"
        ));
    }
    if let Some(user_id) = &filter.user_id {
        conditions.push(format!("user_id = ${}", next(&mut params, user_id)));
    }
    if let Some(strategy_id) = &filter.strategy_id {
        conditions.push(format!("strategy_id = ${}", next(&mut params, strategy_id)));
    }
    if let Some(status) = filter.status {
        conditions.push(has_status("status", status));
    }
    if let Some(since) = &filter.since {
        conditions.push(format!("received_at >= ${}", next(&mut params, since)));
    }
    if let Some(until) = &filter.until {
        conditions.push(format!("received_at < ${}", next(&mut params, until)));
    }
    let n = next(&mut params, limit);
    let filter_text = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {} ", conditions.join(" AND "))
    };
    (
        format!("SELECT {COLUMNS} FROM signals {filter_text}ORDER BY received_at DESC, id DESC LIMIT ${n}"),
        params,
    )
}

/// [`filtered_page`] with no filter and with every filter, for the statement test.
pub fn filtered_examples() -> Vec<&'static str> {
    static TEXTS: LazyLock<[String; 2]> = LazyLock::new(|| {
        let id = uuid::Uuid::nil();
        let now = chrono::Utc::now();
        let all = SignalFilter {
            before: Some(id),
            user_id: Some(id),
            strategy_id: Some(id),
            status: Some("done"),
            since: Some(now),
            until: Some(now),
        };
        [
            filtered_page(&SignalFilter::default(), &1).0,
            filtered_page(&all, &1).0,
        ]
    });
    TEXTS.iter().map(String::as_str).collect()
}

/// Every statement above, for the test that prepares them all.
pub fn all() -> Vec<&'static str> {
    vec![
        SUBMIT_USER.as_str(),
        SUBMIT_STRATEGY.as_str(),
        INSERT_AND_NOTIFY,
        FIND_BY_KEY,
        RETIRE_KEY,
        INSERT_REJECTED,
        CLAIM.as_str(),
        RENEW_LEASES,
        PENDING,
        GET.as_str(),
    ]
}
