//! Statements on `positions`: one row per account and symbol, written from the private `position`
//! topic (an older push never overwrites a newer one), read by the admin API and by break-even.

/// Upsert one account's position on a symbol from a push: $1 key id, $2 symbol, $3 side
/// (`buy` | `sell` | `none`), $4 size, $5 avg entry price, $6 mark price, $7 unrealised PnL,
/// $8 leverage, $9 take profit, $10 stop loss, $11 trailing distance, $12 Bybit's seq (older ones
/// are ignored), $13 whether the transaction may commit without the WAL flush. When the position
/// opens (from flat or new), it is linked to the signal whose latest opening order on this account
/// and symbol was placed or filled (the position push may come before the order's own push), so
/// orders the exchange creates on it (TP, SL, liquidation) are counted for that signal's strategy
/// (found through `orders_opening_by_account`, sql/V12). Zero prices (Bybit's "none") are stored
/// as NULL.
///
/// It is written by the confirmation writer, in the batch transaction of the pushes queued with
/// it. A batch of positions only commits without waiting for the WAL flush (`$13`, the
/// transaction's `synchronous_commit`): the row mirrors the exchange, and every (re)subscription of
/// the account's stream reads its positions over REST and writes them again, with the signal link
/// derived from the durable order rows, so a crash can lose nothing the catch-up does not restore
/// (open positions; one closed meanwhile is flattened by [`FLATTEN_UNLISTED`]). A batch that also
/// carries fills flushes for them anyway.
///
/// The same round trip answers the account's break-even watch on the symbol when it may still fire
/// (`watch_*` columns, NULL when none; the condition is [`super::break_even::MAY_FIRE`]), so a
/// position push costs one statement whether or not anything is armed. No row at all: the push was
/// older than the row.
pub static UPSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "\
    WITH flush AS (SELECT CASE WHEN $13::bool THEN set_config('synchronous_commit', 'off', true) END AS off), \
    up AS ( \
    INSERT INTO positions AS p (api_key_id, user_id, symbol, side, size, avg_entry_price, mark_price, \
                                unrealised_pnl, leverage, take_profit, stop_loss, trailing_stop, \
                                opened_by_signal_id, seq) \
    SELECT k.id, k.user_id, $2::text, $3::text, $4::numeric, NULLIF($5::numeric, 0), NULLIF($6::numeric, 0), \
           $7::numeric, NULLIF($8::numeric, 0), NULLIF($9::numeric, 0), NULLIF($10::numeric, 0), \
           NULLIF($11::numeric, 0), \
           CASE WHEN $4 > 0 THEN (SELECT o.signal_id FROM orders o \
                                  WHERE o.api_key_id = $1 AND o.symbol = $2 AND o.origin = 'signal' \
                                    AND NOT o.reduce_only \
                                    AND (o.filled_qty > 0 OR o.status IN ('pending', 'submitted', 'new', 'partially_filled')) \
                                  ORDER BY o.created_at DESC LIMIT 1) END, \
           $12::bigint \
    FROM api_keys k, flush WHERE k.id = $1::uuid \
    ON CONFLICT (api_key_id, symbol) DO UPDATE SET \
        side = EXCLUDED.side, size = EXCLUDED.size, avg_entry_price = EXCLUDED.avg_entry_price, \
        mark_price = EXCLUDED.mark_price, unrealised_pnl = EXCLUDED.unrealised_pnl, \
        leverage = EXCLUDED.leverage, take_profit = EXCLUDED.take_profit, \
        stop_loss = EXCLUDED.stop_loss, trailing_stop = EXCLUDED.trailing_stop, \
        opened_by_signal_id = CASE WHEN (p.size = 0 OR p.side <> EXCLUDED.side) AND EXCLUDED.size > 0 \
                                   THEN EXCLUDED.opened_by_signal_id \
                                   WHEN p.opened_by_signal_id IS NULL THEN EXCLUDED.opened_by_signal_id \
                                   ELSE p.opened_by_signal_id END, \
        seq = EXCLUDED.seq, updated_at = now() \
    WHERE p.seq IS NULL OR EXCLUDED.seq IS NULL OR EXCLUDED.seq >= p.seq \
    RETURNING p.api_key_id, p.symbol) \
    SELECT b.side AS watch_side, b.entry_price AS watch_entry_price, \
           b.trigger_price AS watch_trigger_price, b.stop_price AS watch_stop_price \
    FROM up LEFT JOIN break_even b \
      ON b.api_key_id = up.api_key_id AND b.symbol = up.symbol AND {may_fire}",
        // Unqualified in MAY_FIRE, its columns are the watch's: `up` has none of those names.
        may_fire = super::break_even::MAY_FIRE
    )
});

/// Only the mark price and unrealised PnL (a ticker or a position push carrying nothing else):
/// $1 key id, $2 symbol, $3 mark price, $4 unrealised PnL.
pub const SET_MARK: &str = "\
    UPDATE positions SET mark_price = $3, unrealised_pnl = COALESCE($4, unrealised_pnl), updated_at = now() \
    WHERE api_key_id = $1 AND symbol = $2";

/// Positions of account $1 still open here but not among the open symbols $2 the exchange listed
/// (closed while the stream was down, or a closing push lost): flat now.
pub const FLATTEN_UNLISTED: &str = "\
    WITH no_flush AS (SELECT set_config('synchronous_commit', 'off', true)) \
    UPDATE positions p SET side = 'none', size = 0, unrealised_pnl = 0, updated_at = now() \
    FROM no_flush \
    WHERE p.api_key_id = $1 AND p.size > 0 AND NOT (p.symbol = ANY($2::text[]))";

/// What the admin API shows of a position.
pub const COLUMNS: &str = "p.api_key_id, p.symbol, p.side, p.size, p.avg_entry_price, p.mark_price, \
     p.unrealised_pnl, p.leverage, p.take_profit, p.stop_loss, p.trailing_stop, p.opened_by_signal_id, \
     p.updated_at";

/// The open positions of user $1 (every account), by symbol.
pub static OF_USER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM positions p WHERE p.user_id = $1 AND p.size > 0 \
         ORDER BY p.symbol, p.api_key_id"
    )
});

/// One account's position on a symbol ($1 key id, $2 symbol), flat or not.
pub static OF_ACCOUNT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("SELECT {COLUMNS} FROM positions p WHERE p.api_key_id = $1 AND p.symbol = $2")
});

/// Every statement above, for the test that prepares them all.
pub fn all() -> Vec<&'static str> {
    vec![
        UPSERT.as_str(),
        SET_MARK,
        FLATTEN_UNLISTED,
        OF_USER.as_str(),
        OF_ACCOUNT.as_str(),
    ]
}
