//! Protection set after the fill: an entry whose take profit or stop loss is a percent, or that
//! has a trailing stop, gets them with one `trading-stop` call as soon as its fill is seen on the
//! private stream (the average fill price makes the percent a price). The time the position stood
//! unprotected is kept on the order (`unprotected_ms`); a refusal keeps Bybit's code and message.

use std::sync::Arc;

use humbex_bybit::{PositionIdx, TradingStopRequest};
use humbex_shared::db::Statements;
use humbex_shared::store::break_even as store_break_even;
use humbex_shared::store::{orders, signals};
use tokio::sync::mpsc;

use crate::confirm::ProtectJob;
use crate::pipeline::Context;
use crate::trade::{break_even, protection};

/// How often filled entries left unprotected (a stop between fill and protection) are looked for.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Set the protection of every job that arrives, each in its own task (one slow account does not
/// hold up another's stops); and every [`SWEEP_EVERY`], of entries an earlier run left unprotected.
pub async fn run(ctx: Arc<Context>, mut jobs: mpsc::UnboundedReceiver<ProtectJob>) {
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    loop {
        let job = tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => job,
                None => return,
            },
            _ = sweep.tick() => {
                if let Err(e) = sweep_once(&ctx).await {
                    tracing::warn!(error = format!("{e:#}"), "unprotected-entry sweep failed");
                }
                continue;
            }
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = protect(&ctx, &job).await {
                tracing::error!(order_id = %job.order_id, error = format!("{e:#}"), "protection after the fill not set");
            }
        });
    }
}

async fn sweep_once(ctx: &Context) -> anyhow::Result<()> {
    let client = ctx.pool.get().await?;
    let rows = client
        .rows(orders::UNPROTECTED, &[&SWEEP_EVERY.as_secs_f64(), &100_i64])
        .await?;
    for row in &rows {
        let job = ProtectJob {
            order_id: row.get("id"),
            api_key_id: row.get("api_key_id"),
            signal_id: row.get("signal_id"),
            symbol: row.get("symbol"),
            buy: row.get::<_, &str>("side") == "buy",
            avg_price: row.get("avg_price"),
        };
        // Only accounts whose stream is open have credentials here; the others wait.
        if ctx.confirmer.credentials(job.api_key_id).is_some()
            && let Err(e) = protect(ctx, &job).await
        {
            tracing::warn!(order_id = %job.order_id, error = format!("{e:#}"), "late protection not set");
        }
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(order_id = %job.order_id, api_key_id = %job.api_key_id))]
async fn protect(ctx: &Context, job: &ProtectJob) -> anyhow::Result<()> {
    let client = ctx.pool.get().await?;
    let row = client.row(signals::GET.as_str(), &[&job.signal_id]).await?;
    let spec = signals::trade_of(&row)?;
    let rules = ctx.instruments.rules(&job.symbol).await?;
    let levels = match protection::resolve(&spec, job.avg_price, job.buy, &rules) {
        Ok(levels) => levels,
        Err(reason) => {
            record_refusal(&client, job, reason.code(), &reason.to_string()).await?;
            return Ok(());
        }
    };
    if let Some(rule) = spec.break_even {
        // Armed once the entry is known; watched on the position topic (crate::break_even).
        let armed = break_even::arm(rule, job.avg_price, job.buy, &rules);
        client
            .run(
                store_break_even::ARM,
                &[
                    &job.api_key_id,
                    &job.symbol,
                    &job.signal_id,
                    &if job.buy { "buy" } else { "sell" },
                    &armed.entry,
                    &armed.trigger_price,
                    &armed.stop_price,
                ],
            )
            .await?;
    }
    if levels.is_empty() {
        // Break-even alone: armed, nothing to set now; the entry counts as handled.
        let none: Option<rust_decimal::Decimal> = None;
        client
            .run(orders::SET_PROTECTION, &[&job.order_id, &none, &none, &none])
            .await?;
        return Ok(());
    }
    let credentials = ctx
        .confirmer
        .credentials(job.api_key_id)
        .ok_or_else(|| anyhow::anyhow!("no open stream (credentials) for the account"))?;
    let request = TradingStopRequest {
        symbol: job.symbol.clone(),
        position_idx: PositionIdx::OneWay,
        take_profit: levels.take_profit,
        stop_loss: levels.stop_loss,
        trailing_stop: levels.trailing_stop,
        active_price: levels.trailing_activation,
    };
    match ctx.rest.set_trading_stop(&credentials, &request).await {
        Ok(_) => {
            let set = client
                .row_opt(
                    orders::SET_PROTECTION,
                    &[
                        &job.order_id,
                        &levels.take_profit,
                        &levels.stop_loss,
                        &levels.trailing_stop,
                    ],
                )
                .await?;
            if let Some(row) = set {
                let ms: Option<i64> = row.get("unprotected_ms");
                tracing::info!(unprotected_ms = ?ms, "protection set after the fill");
            }
            Ok(())
        }
        Err(e) => {
            let code = e.code().map(|c| c.to_string());
            record_refusal(
                &client,
                job,
                code.as_deref().unwrap_or("protection_failed"),
                &e.to_string(),
            )
            .await?;
            Ok(())
        }
    }
}

/// The entry stays filled; its row says why it is not protected.
async fn record_refusal(
    client: &deadpool_postgres::Client,
    job: &ProtectJob,
    code: &str,
    message: &str,
) -> anyhow::Result<()> {
    client
        .run(
            orders::PROTECTION_REFUSED,
            &[&job.order_id, &code, &format!("protection not set: {message}")],
        )
        .await?;
    Ok(())
}
