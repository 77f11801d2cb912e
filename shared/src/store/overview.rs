//! Read-only statements across tables for the operator's overview (`GET /admin/overview`, the
//! console's first page) and the failed-orders report. Each is served by an index (sql/V1, V9).

use std::sync::LazyLock;

/// Signals received in the last $1 seconds, by status (statuses with none left out). One count
/// per status, each naming its status as a literal ([`super::signals::has_status`]) so the
/// planner can prove which partial index holds it: finished ones are counted index-only in
/// `signals_by_status` (sql/V9, V13), received and processing ones in `signals_waiting`, which
/// holds only those. One GROUP BY over the window would read every row's heap page.
pub static SIGNALS_BY_STATUS: LazyLock<String> = LazyLock::new(|| {
    let counts: Vec<String> = crate::domain::signal_status::ALL
        .iter()
        .map(|status| {
            format!(
                "SELECT '{status}' AS status, (SELECT count(*) FROM signals s \
                     WHERE {} AND s.received_at >= now() - make_interval(secs => $1)) AS n",
                super::signals::has_status("s.status", status)
            )
        })
        .collect();
    format!(
        "SELECT status, n FROM ({}) c WHERE n > 0 ORDER BY status",
        counts.join(" UNION ALL ")
    )
});

/// Orders created in the last $1 seconds, by status.
pub const ORDERS_BY_STATUS: &str = "SELECT status, count(*) AS n FROM orders \
     WHERE created_at >= now() - make_interval(secs => $1) GROUP BY status ORDER BY status";

/// Webhook → order submitted and webhook → filled latency percentiles (p50, p90, p99, in
/// milliseconds) over the newest 1,000 orders created in the last $1 seconds (a bounded sample, so
/// the overview costs the same at any volume); NULL when there are none.
pub const LATENCIES: &str = "\
    WITH o AS ( \
        SELECT signal_id, submitted_at, filled_at FROM orders \
        WHERE created_at >= now() - make_interval(secs => $1) \
        ORDER BY created_at DESC LIMIT 1000) \
    SELECT percentile_cont(ARRAY[0.5, 0.9, 0.99]::float8[]) WITHIN GROUP \
               (ORDER BY extract(epoch FROM o.submitted_at - s.received_at) * 1000) \
               FILTER (WHERE o.submitted_at IS NOT NULL) AS to_order_ms, \
           percentile_cont(ARRAY[0.5, 0.9, 0.99]::float8[]) WITHIN GROUP \
               (ORDER BY extract(epoch FROM o.filled_at - s.received_at) * 1000) \
               FILTER (WHERE o.filled_at IS NOT NULL) AS to_fill_ms \
    FROM o JOIN signals s ON s.id = o.signal_id";

/// The oldest signal still waiting for the executor, the last fill, keys marked unusable, the
/// executor's LISTEN connections (application_name, docs/design.md), and whether every migration
/// is in (the database answered, so ingest's readiness is this query's success).
pub const STATE: &str = "\
    SELECT (SELECT min(received_at) FROM signals WHERE status IN ('received', 'processing')) \
               AS oldest_pending_at, \
           (SELECT max(created_at) FROM fills) AS last_fill_at, \
           (SELECT count(*) FROM api_keys WHERE unusable_at IS NOT NULL AND revoked_at IS NULL) \
               AS unusable_keys, \
           (SELECT count(*) FROM pg_stat_activity WHERE application_name = 'humbex-executor-listen') \
               AS executor_listeners";

/// Active subscriptions that expire within $1 seconds (soonest first, at most 50), with the email.
pub const EXPIRING: &str = "\
    SELECT s.user_id, u.email, s.expires_at FROM subscriptions s JOIN users u ON u.id = s.user_id \
    WHERE s.status = 'active' AND s.expires_at IS NOT NULL \
      AND s.expires_at BETWEEN now() AND now() + make_interval(secs => $1) \
    ORDER BY s.expires_at LIMIT 50";

/// Failed and rejected orders created since $1, grouped by status and Bybit's code and message,
/// largest group first (at most 100 groups).
pub const FAILURE_GROUPS: &str = "\
    SELECT status, error_code, COALESCE(error, '') AS reason, count(*) AS orders, \
           count(DISTINCT user_id) AS users, max(created_at) AS last_at \
    FROM orders WHERE status IN ('failed', 'rejected') AND created_at >= $1 \
    GROUP BY status, error_code, COALESCE(error, '') \
    ORDER BY count(*) DESC, max(created_at) DESC LIMIT 100";

/// Every statement above, for the test that prepares them all.
pub fn all() -> Vec<&'static str> {
    vec![
        SIGNALS_BY_STATUS.as_str(),
        ORDERS_BY_STATUS,
        LATENCIES,
        STATE,
        EXPIRING,
        FAILURE_GROUPS,
    ]
}
