//! Statements on `break_even`: a watch per account and symbol, armed once the entry is known,
//! claimed before its one stop-loss move (so it fires once, across restarts and executors), and
//! finished with what the exchange said.

/// How long a claim holds: a crash while moving re-arms the watch after this.
pub const MOVING_SECS: f64 = 30.0;

/// Arm (or re-arm, for a new entry: another signal) the watch; the same signal again never
/// re-arms a watch that fired: $1 key id, $2 symbol, $3 signal id, $4 side
/// (`buy` = long), $5 entry, $6 trigger price, $7 stop price.
pub const ARM: &str = "\
    INSERT INTO break_even (api_key_id, symbol, signal_id, side, entry_price, trigger_price, stop_price) \
    VALUES ($1, $2, $3, $4, $5, $6, $7) \
    ON CONFLICT (api_key_id, symbol) DO UPDATE SET \
        signal_id = EXCLUDED.signal_id, side = EXCLUDED.side, entry_price = EXCLUDED.entry_price, \
        trigger_price = EXCLUDED.trigger_price, stop_price = EXCLUDED.stop_price, status = 'armed', \
        moving_until = NULL, error_code = NULL, error = NULL, armed_at = now(), fired_at = NULL \
    WHERE break_even.signal_id <> EXCLUDED.signal_id";

/// A watch that may still fire: armed, or a claim that ran out (the mover crashed). Read with each
/// position push by [`super::positions::UPSERT`].
pub const MAY_FIRE: &str = "(status = 'armed' OR (status = 'moving' AND moving_until < now()))";

/// Claim the watch for its one move ($1 key id, $2 symbol, $3 claim seconds); no row: someone else
/// has it or it already fired.
pub static CLAIM: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE break_even SET status = 'moving', moving_until = now() + make_interval(secs => $3), \
             fired_at = now() \
         WHERE api_key_id = $1 AND symbol = $2 AND {MAY_FIRE} \
         RETURNING stop_price"
    )
});

/// End a claimed move: $3 `moved` | `protected` | `failed` | `armed` (a retryable failure),
/// with Bybit's $4 code and $5 message when refused.
pub const FINISH: &str = "\
    UPDATE break_even SET status = $3, moving_until = NULL, error_code = $4, error = $5, \
        fired_at = CASE WHEN $3 = 'armed' THEN NULL ELSE fired_at END \
    WHERE api_key_id = $1 AND symbol = $2 AND status = 'moving'";

/// Every statement above, for the test that prepares them all.
pub fn all() -> Vec<&'static str> {
    vec![ARM, CLAIM.as_str(), FINISH]
}
