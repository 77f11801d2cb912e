//! Break-even on the private `position` topic: each push's mark price is held against the
//! account's armed watch (table `break_even`, read in the same statement that records the
//! position); at the trigger the watch is claimed (so the move happens once, across restarts and
//! executors) and the stop loss moved with one trading-stop call. The decision itself is
//! [`crate::trade::break_even::decide`].

use deadpool_postgres::Pool;
use humbex_bybit::{BybitRest, Credentials, Position, PositionIdx, TradingStopRequest};
use humbex_shared::db::Statements;
use humbex_shared::store::break_even as store;
use rust_decimal::Decimal;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::trade::break_even::{Armed, Decision, decide};

/// The watch the position upsert answered with (`watch_*` columns), if one may still fire.
pub fn watch_of(row: &Row) -> Option<Armed> {
    let side: Option<&str> = row.get("watch_side");
    Some(Armed {
        long: side? == "buy",
        entry: row.get("watch_entry_price"),
        trigger_price: row.get("watch_trigger_price"),
        stop_price: row.get("watch_stop_price"),
    })
}

/// What a position push means for its armed watch; `Wait` when the position is flat or carries no
/// mark price.
pub fn decision(armed: &Armed, position: &Position) -> Decision {
    match position.mark_price {
        Some(mark) if position.size > Decimal::ZERO => decide(armed, mark, position.stop_loss),
        _ => Decision::Wait,
    }
}

/// Carry out a decision other than `Wait`: claim the watch, move the stop (or only mark it fired
/// when the stop already protects as much), record the outcome.
#[tracing::instrument(skip_all, fields(%api_key_id, symbol = %position.symbol))]
pub async fn fire(
    pool: &Pool,
    rest: &BybitRest,
    credentials: &Credentials,
    api_key_id: Uuid,
    position: &Position,
    decision: Decision,
) -> anyhow::Result<()> {
    let client = pool.get().await?;
    if client
        .row_opt(
            &store::CLAIM,
            &[&api_key_id, &position.symbol, &store::MOVING_SECS],
        )
        .await?
        .is_none()
    {
        return Ok(()); // fired already, or another push is moving it now
    }
    let (status, code, message) = match decision {
        Decision::Move(stop) => {
            let request = TradingStopRequest {
                symbol: position.symbol.clone(),
                position_idx: PositionIdx::OneWay,
                stop_loss: Some(stop),
                ..TradingStopRequest::default()
            };
            match rest.set_trading_stop(credentials, &request).await {
                Ok(_) => ("moved", None, None),
                Err(e) if e.code().is_some() => {
                    ("failed", e.code().map(|c| c.to_string()), Some(e.to_string()))
                }
                // Not known to be refused: armed again, tried on the next push.
                Err(e) => ("armed", None, Some(e.to_string())),
            }
        }
        _ => ("protected", None, None),
    };
    client
        .run(
            store::FINISH,
            &[&api_key_id, &position.symbol, &status, &code, &message],
        )
        .await?;
    tracing::info!(status, "break-even watch fired");
    Ok(())
}
