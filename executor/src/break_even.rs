//! Break-even on the private `position` topic: each push's mark price is held against the
//! account's armed watch (table `break_even`); at the trigger the watch is claimed (so the move
//! happens once, across restarts and executors) and the stop loss moved with one trading-stop
//! call. The decision itself is [`crate::trade::break_even::decide`].

use humbex_bybit::{BybitRest, Credentials, Position, PositionIdx, TradingStopRequest};
use humbex_shared::db::Statements;
use humbex_shared::store::break_even as store;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::trade::break_even::{Armed, Decision, decide};

/// Look at one position push; move the stop when the armed watch's trigger is reached.
#[tracing::instrument(skip_all, fields(%api_key_id, symbol = %position.symbol))]
pub async fn on_position(
    client: &impl Statements,
    rest: &BybitRest,
    credentials: &Credentials,
    api_key_id: Uuid,
    position: &Position,
) -> anyhow::Result<()> {
    let (Some(mark), true) = (position.mark_price, position.size > Decimal::ZERO) else {
        return Ok(());
    };
    let Some(row) = client
        .row_opt(store::WATCH, &[&api_key_id, &position.symbol])
        .await?
    else {
        return Ok(());
    };
    let armed = Armed {
        long: row.get::<_, &str>("side") == "buy",
        entry: row.get("entry_price"),
        trigger_price: row.get("trigger_price"),
        stop_price: row.get("stop_price"),
    };
    let decision = decide(&armed, mark, position.stop_loss);
    if decision == Decision::Wait {
        return Ok(());
    }
    if client
        .row_opt(
            store::CLAIM,
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
