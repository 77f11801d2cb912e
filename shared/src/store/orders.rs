//! Statements on `orders`: writing planned rows, settling submissions (with their signals), applying
//! exchange states, reconciliation's reads and the admin reads.

use std::sync::LazyLock;

use crate::domain::order_status;

/// `{column} IN (<open statuses>)`, the condition of the partial index `orders_open`.
fn is_open(column: &str) -> String {
    let list: Vec<String> = order_status::OPEN.iter().map(|s| format!("'{s}'")).collect();
    format!("{column} IN ({})", list.join(", "))
}

/// The rank of the status in `column`, as [`order_status::rank`] gives it.
fn rank(column: &str) -> String {
    let whens: Vec<String> = order_status::OPEN
        .iter()
        .map(|s| format!("WHEN '{s}' THEN {}", order_status::rank(s)))
        .collect();
    format!(
        "(CASE {column} {} ELSE {} END)",
        whens.join(" "),
        order_status::TERMINAL_RANK
    )
}

/// Write the planned rows of a batch of signals ($1 … $11 and $13 … $24, one array per column) and
/// return every row of signals $12 still to be sent, with the key material the POST needs: new
/// rows from `RETURNING`, rows an earlier claim wrote from the statement's snapshot. A row exists
/// once per (signal, user, leg): a target sync may write a reduce-only and an opening leg.
pub const INSERT_PLANNED: &str = "WITH inserted AS ( \
         INSERT INTO orders (id, signal_id, user_id, api_key_id, order_link_id, symbol, side, qty, \
                             reduce_only, status, error, leg, error_code, order_type, limit_price, \
                             time_in_force, trigger_price, take_profit, stop_loss, trailing_stop, leverage, \
                             cancel_after_secs, protect_after_fill) \
         SELECT t.id, t.signal_id, t.user_id, t.api_key_id, t.order_link_id, t.symbol, t.side, t.qty, \
                t.reduce_only, t.status, t.error, t.leg, t.error_code, t.order_type, t.limit_price, \
                t.time_in_force, t.trigger_price, t.take_profit, t.stop_loss, t.trailing_stop, t.leverage, \
                t.cancel_after_secs, t.protect_after_fill \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], \
                     $7::text[], $8::numeric[], $9::bool[], $10::text[], $11::text[], $13::text[], \
                     $14::text[], $15::text[], $16::numeric[], $17::text[], $18::numeric[], \
                     $19::numeric[], $20::numeric[], $21::numeric[], $22::numeric[], $23::int4[], \
                     $24::bool[]) \
              AS t (id, signal_id, user_id, api_key_id, order_link_id, symbol, side, qty, reduce_only, \
                    status, error, leg, error_code, order_type, limit_price, time_in_force, trigger_price, \
                    take_profit, stop_loss, trailing_stop, leverage, cancel_after_secs, protect_after_fill) \
         ON CONFLICT (signal_id, user_id, leg) WHERE origin = 'signal' DO NOTHING \
         RETURNING id, signal_id, user_id, api_key_id, order_link_id, symbol, side, qty, reduce_only, \
                   attempts, status, leg, order_type, limit_price, time_in_force, trigger_price, \
                   take_profit, stop_loss), \
     to_send AS ( \
         SELECT id, signal_id, user_id, api_key_id, order_link_id, symbol, side, qty, reduce_only, attempts, \
                leg, order_type, limit_price, time_in_force, trigger_price, take_profit, stop_loss \
         FROM inserted WHERE status = 'pending' \
         UNION ALL \
         SELECT id, signal_id, user_id, api_key_id, order_link_id, symbol, side, qty, reduce_only, attempts, \
                leg, order_type, limit_price, time_in_force, trigger_price, take_profit, stop_loss \
         FROM orders WHERE signal_id = ANY($12) AND status = 'pending') \
     SELECT o.id, o.signal_id, o.user_id, o.api_key_id, o.order_link_id, o.symbol, o.side, o.qty, \
            o.reduce_only, o.attempts, o.leg, o.order_type, o.limit_price, o.time_in_force, \
            o.trigger_price, o.take_profit, o.stop_loss, k.api_key_enc, k.api_secret_enc, \
            (k.revoked_at IS NULL AND k.unusable_at IS NULL) AS key_usable \
     FROM to_send o JOIN api_keys k ON k.id = o.api_key_id \
     ORDER BY o.signal_id, o.id";

/// Order answers: the status moves only from 'pending' (a fill push can arrive before the create
/// call returns, and a row never goes backwards), while the exchange id and the submission time are
/// kept whichever came first. Signals: finished or released only if this executor still holds them
/// (a lost lease means another executor owns it now, and its outcome wins). One statement, so a
/// signal is never finished without its answers. It commits with the WAL flush: the answers are
/// what the confirmer and the operator read.
///
/// Row locks are taken first, in id order (`locked_*`): the confirmer's writer and lease renewal
/// lock the same rows in the same order, so no two of them can wait on each other in a cycle.
/// Sorting the input alone would not do: the join order of an `UPDATE … FROM unnest` is the
/// planner's choice. Nor does a CTE alone: PostgreSQL evaluates a (even materialised) SELECT CTE
/// only as far as its reader pulls, so `o.id IN (SELECT id FROM locked_orders)` as a semi-join could
/// lock a row, update it, then lock the next in the join's order, and it deadlocked with the
/// confirmer under load (each costing `deadlock_timeout`, 1 s). Reading the CTE through
/// `array_agg` makes it an InitPlan that runs to the end, locking every row in id order, before
/// the first update.
///
/// The same statement announces on `humbex_signals` the received signals that read a position
/// (`woken`, at most 64, found through the partial index `signals_waiting_on_position`, sql/V11):
/// one of them may have been waiting for this signal to end or this order to leave `pending`
/// (`signals::CLAIM`), and is claimed as soon as this commits rather than at the next sweep. On the
/// common path no such signal waits and the look-up is an empty index scan.
pub static SETTLE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "\
    WITH locked_orders AS MATERIALIZED ( \
        SELECT id FROM orders WHERE id = ANY($2) ORDER BY id FOR NO KEY UPDATE), \
    locked_signals AS MATERIALIZED ( \
        SELECT id FROM signals WHERE id = ANY($8) ORDER BY id FOR NO KEY UPDATE), \
    answers AS ( \
        UPDATE orders o SET \
            status = CASE WHEN o.status = 'pending' THEN a.status ELSE o.status END, \
            exchange_order_id = COALESCE(o.exchange_order_id, a.exchange_order_id), \
            error_code = CASE WHEN o.status = 'pending' THEN a.code ELSE o.error_code END, \
            error = CASE WHEN o.status = 'pending' THEN a.message ELSE o.error END, \
            attempts = GREATEST(o.attempts, a.attempts), \
            submitted_at = CASE WHEN a.status = 'submitted' THEN COALESCE(o.submitted_at, now()) \
                                ELSE o.submitted_at END, \
            cancel_at = CASE WHEN a.status = 'submitted' AND o.cancel_after_secs IS NOT NULL \
                             THEN COALESCE(o.cancel_at, now() + make_interval(secs => o.cancel_after_secs)) \
                             ELSE o.cancel_at END, \
            updated_at = now() \
        FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[]) \
             AS a (id, status, exchange_order_id, code, message, attempts) \
        WHERE o.id = a.id AND o.id = ANY ((SELECT array_agg(id) FROM locked_orders)::uuid[]) \
        RETURNING o.id), \
    ended AS ( \
        UPDATE signals s SET \
            status = CASE WHEN e.status = 'release' THEN s.status ELSE e.status END, \
            reject_reason = CASE WHEN e.status = 'release' THEN s.reject_reason ELSE e.reason END, \
            processed_at = CASE WHEN e.status = 'release' THEN s.processed_at ELSE now() END, \
            claimed_by = CASE WHEN e.status = 'release' THEN NULL ELSE s.claimed_by END, \
            claimed_until = CASE WHEN e.status = 'release' THEN now() + make_interval(secs => e.retry_in) \
                                 ELSE NULL END, \
            updated_at = now() \
        FROM UNNEST($8::uuid[], $9::text[], $10::text[], $11::float8[]) AS e (id, status, reason, retry_in) \
        WHERE s.id = e.id AND s.claimed_by = $1 AND s.status = 'processing' \
          AND s.id = ANY ((SELECT array_agg(id) FROM locked_signals)::uuid[]) \
        RETURNING s.id), \
    woken AS ( \
        SELECT pg_notify('humbex_signals', w.id::text) FROM signals w \
        WHERE w.status = 'received' AND {dependent} \
        ORDER BY w.received_at LIMIT 64) \
    SELECT (SELECT count(*) FROM answers) AS answered, (SELECT count(*) FROM ended) AS ended, \
           (SELECT count(*) FROM woken) AS woken",
        dependent = super::signals::position_dependent("w")
    )
});

/// One row of `u` per order update: `u.idx` its place in the batch, `u.link_id`, `u.key_id`,
/// `u.status` with its rank `u.rnk`, `u.cum_qty` (cumExecQty), `u.avg`, `u.fee`, `u.xid` (exchange
/// order id), `u.xtime` (exchange update time), `u.reason` (reject reason), `u.closed_pnl` (Bybit's
/// closedPnl, kept when the order reduced a position: nonzero, or a reduce-only order). No two rows of one
/// statement may name the same order (PostgreSQL would apply only one of them): the batch writer
/// sends an order's second update in the next statement of the same transaction.
///
/// `previous_status` is the row's status before this statement (a sub-select sees the statement's
/// starting snapshot, not its own update) and `age_seconds` the row's age now: together they say
/// when an order became filled, for `humbex_order_to_fill_seconds` (docs/metrics.md).
///
/// Every assignment is guarded by the row being open, so a terminal row is frozen; numbers follow
/// only a cumulative quantity that did not go down, so an older snapshot never overwrites a newer
/// one. Because the guards read the row being updated, a concurrent writer is re-checked by
/// PostgreSQL's READ COMMITTED re-evaluation instead of needing a SELECT ... FOR UPDATE first.
pub static APPLY_UPDATES: LazyLock<String> = LazyLock::new(|| {
    let is_open = is_open("o.status");
    let rank = rank("o.status");
    format!(
        "UPDATE orders o SET \
            status = CASE WHEN {is_open} AND u.rnk >= {rank} THEN u.status ELSE o.status END, \
            filled_qty = CASE WHEN {is_open} AND u.cum_qty > o.filled_qty THEN u.cum_qty ELSE o.filled_qty END, \
            avg_price = CASE WHEN {is_open} AND u.cum_qty >= o.filled_qty THEN COALESCE(u.avg, o.avg_price) \
                        ELSE o.avg_price END, \
            fee = CASE WHEN {is_open} AND u.cum_qty >= o.filled_qty THEN COALESCE(u.fee, o.fee) ELSE o.fee END, \
            exchange_order_id = CASE WHEN {is_open} THEN COALESCE(o.exchange_order_id, u.xid) \
                                ELSE o.exchange_order_id END, \
            acknowledged_at = CASE WHEN {is_open} THEN COALESCE(o.acknowledged_at, now()) \
                              ELSE o.acknowledged_at END, \
            filled_at = CASE WHEN {is_open} AND u.status = 'filled' THEN COALESCE(o.filled_at, u.xtime, now()) \
                        ELSE o.filled_at END, \
            error_code = CASE WHEN {is_open} AND u.status = 'rejected' THEN u.reason ELSE o.error_code END, \
            error = CASE WHEN {is_open} AND u.status = 'rejected' THEN 'rejected by the exchange: ' || u.reason \
                    ELSE o.error END, \
            closed_pnl = CASE WHEN {is_open} AND u.cum_qty >= o.filled_qty AND u.closed_pnl IS NOT NULL \
                              AND (u.closed_pnl <> 0 OR o.reduce_only) THEN u.closed_pnl ELSE o.closed_pnl END, \
            updated_at = now() \
         FROM unnest($1::int4[], $2::text[], $3::uuid[], $4::text[], $5::int4[], $6::numeric[], \
                     $7::numeric[], $8::numeric[], $9::text[], $10::timestamptz[], $11::text[], \
                     $12::numeric[]) \
              AS u(idx, link_id, key_id, status, rnk, cum_qty, avg, fee, xid, xtime, reason, closed_pnl) \
         WHERE o.order_link_id = u.link_id AND o.api_key_id = u.key_id \
         RETURNING u.idx, o.id, o.status, o.origin, o.signal_id, o.symbol, o.side, o.avg_price, \
                   (o.protect_after_fill AND o.protected_at IS NULL AND o.status = 'filled') AS needs_protection, \
                   (SELECT p.status FROM orders p WHERE p.id = o.id) AS previous_status, \
                   extract(epoch FROM clock_timestamp() - o.created_at)::float8 AS age_seconds"
    )
});

/// Lock the orders named by ($1 order link id, $2 key id) pairs, in id order.
pub const LOCK_BY_LINK: &str = "\
    SELECT o.id FROM orders o \
    JOIN unnest($1::text[], $2::uuid[]) AS u(link_id, key_id) \
      ON o.order_link_id = u.link_id AND o.api_key_id = u.key_id \
    ORDER BY o.id FOR NO KEY UPDATE OF o";

/// The open orders of an account ($1 key id), oldest first.
pub static OPEN_OF_ACCOUNT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT id, api_key_id, order_link_id, symbol, status FROM orders \
         WHERE api_key_id = $1 AND {} \
         ORDER BY created_at",
        is_open("status")
    )
});

// pending/submitted age from submission (or creation); new/partially_filled from their last
// change, so a market order whose terminal push was lost is still found. A filled order whose fill
// rows do not add up to its filled quantity (its execution push was lost after the order push) is
// looked up too, for an hour, so its fills are fetched over REST.
/// Orders of accounts $1 to look up over REST ($2 seconds without news), at most $3.
pub const UNCONFIRMED: &str = "\
    SELECT id, api_key_id, order_link_id, symbol, status FROM orders \
    WHERE api_key_id = ANY($1) \
      AND ((status IN ('pending', 'submitted') \
            AND COALESCE(submitted_at, created_at) < now() - make_interval(secs => $2)) \
        OR (status IN ('new', 'partially_filled') AND updated_at < now() - make_interval(secs => $2)) \
        OR (status IN ('filled', 'cancelled') AND filled_qty > 0 \
            AND updated_at < now() - make_interval(secs => $2) AND updated_at > now() - interval '1 hour' \
            AND filled_qty > COALESCE((SELECT sum(f.qty) FROM fills f WHERE f.order_id = orders.id), 0))) \
    ORDER BY created_at \
    LIMIT $3";

/// What the admin API shows of an order (`s` is its signal, for the slippage; none for an order the
/// exchange or the user created).
pub const COLUMNS: &str = "o.id, o.signal_id, o.user_id, o.api_key_id, o.order_link_id, o.exchange_order_id, \
     o.symbol, o.side, o.qty, o.reduce_only, o.status, o.error, o.avg_price, o.filled_qty, o.fee, \
     o.created_at, o.submitted_at, o.acknowledged_at, o.filled_at, o.error_code, o.origin, o.leg, \
     o.order_type, o.limit_price, o.time_in_force, o.trigger_price, o.take_profit, o.stop_loss, \
     o.trailing_stop, o.leverage, o.closed_pnl, o.unprotected_ms, \
     CASE WHEN o.side = 'buy' THEN o.avg_price - s.price ELSE s.price - o.avg_price END AS slippage";

/// The orders of signal $1, oldest first, as [`COLUMNS`].
pub static OF_SIGNAL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM orders o JOIN signals s ON s.id = o.signal_id \
         WHERE o.signal_id = $1 ORDER BY o.created_at, o.id"
    )
});

/// A page of orders, newest first, in status $1 (or any), before order $2 (or from the newest), at
/// most $3, as [`COLUMNS`].
pub static PAGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM orders o LEFT JOIN signals s ON s.id = o.signal_id \
         WHERE ($1::text IS NULL OR o.status = $1) \
           AND ($2::uuid IS NULL OR (o.created_at, o.id) < \
                (SELECT created_at, id FROM orders WHERE id = $2)) \
         ORDER BY o.created_at DESC, o.id DESC LIMIT $3"
    )
});

/// Pending orders of the accounts executor $1 holds (sql/V8), oldest first, at most $2, leaving out
/// orders $3 (those it is sending now), with the
/// key material their POST needs (as [`INSERT_PLANNED`] returns them): the orders another
/// executor's claim wrote for this owner. Orders of signals this executor works on itself, or that
/// are given back for a retry, are left to that signal's claim.
pub const PENDING_OF_OWNER: &str = "\
    SELECT o.id, o.signal_id, o.user_id, o.api_key_id, o.order_link_id, o.symbol, o.side, o.qty, \
           o.reduce_only, o.attempts, o.leg, o.order_type, o.limit_price, o.time_in_force, \
           o.trigger_price, o.take_profit, o.stop_loss, k.api_key_enc, k.api_secret_enc, \
           (k.revoked_at IS NULL AND k.unusable_at IS NULL) AS key_usable \
    FROM orders o \
    JOIN account_leases l ON l.api_key_id = o.api_key_id AND l.executor_id = $1 \
    JOIN signals s ON s.id = o.signal_id \
    JOIN api_keys k ON k.id = o.api_key_id \
    WHERE o.status = 'pending' AND NOT (o.id = ANY($3)) \
      AND NOT (s.status = 'processing' AND (s.claimed_by = $1 OR s.claimed_by IS NULL) \
               AND s.claimed_until > now()) \
    ORDER BY o.created_at, o.id \
    LIMIT $2";

/// Record an order HUMBEX did not place (no orderLinkId of ours: a TP/SL/trailing/liquidation/ADL
/// order the exchange created, or a manual one), found by ($1 key id, $2 exchange order id). The
/// user comes from the key; the signal is the one whose order opened the position, when known. A
/// later push of the same order moves it forward only (rank and cumulative quantity, as
/// [`APPLY_UPDATES`]). $3 origin, $4 symbol, $5 side, $6 qty, $7 order_type, $8 status (rank $9),
/// $10 cumulative filled qty, $11 average price, $12 fee, $13 closed_pnl, $14 trigger_price,
/// $15 exchange update time, $16 reduce_only, $17 a new row id. `previous_status` is the row's
/// status before this statement, NULL for a new row (as in [`APPLY_UPDATES`]: the sub-select sees
/// the statement's starting snapshot), for `humbex_orders_total`.
pub static UPSERT_FOREIGN: LazyLock<String> = LazyLock::new(|| {
    let is_open = is_open("o.status");
    let rank = rank("o.status");
    format!(
        "INSERT INTO orders AS o (id, signal_id, user_id, api_key_id, exchange_order_id, origin, symbol, side, \
                                 qty, order_type, status, filled_qty, avg_price, fee, closed_pnl, trigger_price, \
                                 reduce_only, acknowledged_at, filled_at) \
         SELECT $17::uuid, p.opened_by_signal_id, k.user_id, k.id, $2::text, $3::text, $4::text, $5::text, \
                $6::numeric, $7::text, $8::text, $10::numeric, $11::numeric, COALESCE($12::numeric, 0), \
                CASE WHEN $13::numeric <> 0 OR $16::bool THEN $13 END, $14::numeric, $16, now(), \
                CASE WHEN $8 = 'filled' THEN COALESCE($15::timestamptz, now()) END \
         FROM api_keys k LEFT JOIN positions p ON p.api_key_id = k.id AND p.symbol = $4 \
         WHERE k.id = $1::uuid \
         ON CONFLICT (api_key_id, exchange_order_id) WHERE exchange_order_id IS NOT NULL DO UPDATE SET \
            status = CASE WHEN {is_open} AND $9::int4 >= {rank} THEN EXCLUDED.status ELSE o.status END, \
            filled_qty = CASE WHEN {is_open} AND EXCLUDED.filled_qty > o.filled_qty THEN EXCLUDED.filled_qty \
                         ELSE o.filled_qty END, \
            avg_price = CASE WHEN {is_open} AND EXCLUDED.filled_qty >= o.filled_qty \
                        THEN COALESCE(EXCLUDED.avg_price, o.avg_price) ELSE o.avg_price END, \
            fee = CASE WHEN {is_open} AND EXCLUDED.filled_qty >= o.filled_qty THEN EXCLUDED.fee ELSE o.fee END, \
            closed_pnl = CASE WHEN {is_open} AND EXCLUDED.filled_qty >= o.filled_qty \
                         THEN COALESCE(EXCLUDED.closed_pnl, o.closed_pnl) ELSE o.closed_pnl END, \
            filled_at = CASE WHEN {is_open} THEN COALESCE(o.filled_at, EXCLUDED.filled_at) ELSE o.filled_at END, \
            updated_at = now() \
         RETURNING o.id, o.status, o.origin, o.signal_id, o.user_id, \
                   (SELECT p.status FROM orders p WHERE p.id = o.id) AS previous_status"
    )
});

/// Protection set after the fill on order $1: the prices ($2 take profit, $3 stop loss, $4
/// trailing distance) and how long the position stood unprotected, from the fill to now. Once.
pub const SET_PROTECTION: &str = "\
    UPDATE orders SET take_profit = COALESCE($2, take_profit), stop_loss = COALESCE($3, stop_loss), \
        trailing_stop = COALESCE($4, trailing_stop), protected_at = now(), \
        unprotected_ms = GREATEST(0, (extract(epoch FROM now() - COALESCE(filled_at, now())) * 1000)::bigint), \
        updated_at = now() \
    WHERE id = $1 AND protected_at IS NULL \
    RETURNING unprotected_ms";

/// Open orders whose cancel_after_secs has run out, oldest deadline first, at most $1.
pub static DUE_CANCELS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT id, api_key_id, order_link_id, symbol, status FROM orders \
         WHERE cancel_at IS NOT NULL AND cancel_at <= now() AND {} \
         ORDER BY cancel_at LIMIT $1",
        is_open("status")
    )
});

/// The timer of order $1 has done its part (the cancel was sent, or refused as filled or gone).
pub const CANCEL_SENT: &str = "UPDATE orders SET cancel_at = NULL, updated_at = now() WHERE id = $1";

/// `action=cancel`: the open orders HUMBEX placed for signals on symbol $2 for users $1 (resting
/// limits and untriggered entries; TP/SL live on the position, not here).
pub static OPEN_ENTRIES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT id, api_key_id, order_link_id, symbol, status FROM orders \
         WHERE user_id = ANY($1) AND symbol = $2 AND origin = 'signal' AND NOT reduce_only \
           AND api_key_id IS NOT NULL AND {} \
         ORDER BY created_at",
        is_open("status")
    )
});

/// The one rule for realised PnL: over the orders with a fill that match `filter` on `o`/`s` and
/// were filled in [`from`, `to`) (SQL expressions of type timestamptz; NULL leaves that end open),
/// grouped by `group` and selecting `keys`: `realised_pnl` sums closed_pnl, `fees` every filled
/// order's fee, `closed_trades` counts the orders with a closed_pnl (those that reduced a position).
/// Used by the admin PnL below and by the daily summary notification.
pub fn pnl_sums(keys: &str, filter: &str, from: &str, to: &str, group: &str) -> String {
    format!(
        "SELECT {keys}, COALESCE(sum(o.closed_pnl), 0) AS realised_pnl, COALESCE(sum(o.fee), 0) AS fees, \
                count(o.closed_pnl) AS closed_trades \
         FROM orders o LEFT JOIN signals s ON s.id = o.signal_id \
         WHERE {filter} AND o.filled_qty > 0 \
           AND ({from} IS NULL OR o.filled_at >= {from}) AND ({to} IS NULL OR o.filled_at < {to}) \
         GROUP BY {group}"
    )
}

/// Realised PnL of orders filled in [$2, $3) that match `filter`, see [`pnl_sums`]: per symbol, and
/// the total as the row whose `symbol` is NULL.
fn pnl(filter: &str) -> String {
    format!(
        "{} ORDER BY o.symbol NULLS LAST",
        pnl_sums(
            "o.symbol",
            filter,
            "$2::timestamptz",
            "$3::timestamptz",
            "ROLLUP (o.symbol)"
        )
    )
}

/// Realised PnL of user $1 (every account), see [`pnl`].
pub static PNL_OF_USER: LazyLock<String> = LazyLock::new(|| pnl("o.user_id = $1"));

/// Realised PnL of the orders of strategy $1's signals (exchange-created orders count through the
/// signal that opened their position), see [`pnl`].
pub static PNL_OF_STRATEGY: LazyLock<String> = LazyLock::new(|| pnl("s.strategy_id = $1"));

/// Protection after the fill of order $1 was refused: Bybit's code $2 and message $3 on the row
/// (the entry itself stays filled).
pub const PROTECTION_REFUSED: &str = "\
    UPDATE orders SET error_code = $2, error = $3, updated_at = now() \
    WHERE id = $1 AND protected_at IS NULL";

/// Filled orders whose protection after the fill was never set (an executor stopped in between)
/// and not refused, filled more than $1 seconds ago (the live path has had its chance), at most $2.
pub const UNPROTECTED: &str = "\
    SELECT id, api_key_id, signal_id, symbol, side, avg_price FROM orders \
    WHERE protect_after_fill AND protected_at IS NULL AND status = 'filled' AND error_code IS NULL \
      AND signal_id IS NOT NULL AND avg_price IS NOT NULL \
      AND filled_at < now() - make_interval(secs => $1) AND filled_at > now() - interval '1 day' \
    ORDER BY filled_at LIMIT $2";

/// Every statement above, for the test that prepares them all.
pub fn all() -> Vec<&'static str> {
    vec![
        INSERT_PLANNED,
        SETTLE.as_str(),
        APPLY_UPDATES.as_str(),
        LOCK_BY_LINK,
        OPEN_OF_ACCOUNT.as_str(),
        UNCONFIRMED,
        OF_SIGNAL.as_str(),
        PAGE.as_str(),
        UPSERT_FOREIGN.as_str(),
        SET_PROTECTION,
        UNPROTECTED,
        PROTECTION_REFUSED,
        DUE_CANCELS.as_str(),
        CANCEL_SENT,
        OPEN_ENTRIES.as_str(),
        PNL_OF_USER.as_str(),
        PNL_OF_STRATEGY.as_str(),
        PENDING_OF_OWNER,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_match_the_orders_open_index_and_the_ranks() {
        assert_eq!(
            is_open("o.status"),
            "o.status IN ('pending', 'submitted', 'new', 'partially_filled')"
        );
        assert_eq!(
            rank("o.status"),
            "(CASE o.status WHEN 'pending' THEN 0 WHEN 'submitted' THEN 1 WHEN 'new' THEN 2 \
             WHEN 'partially_filled' THEN 3 ELSE 4 END)"
        );
    }
}
