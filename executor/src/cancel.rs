//! Cancelling resting entries: `action=cancel` (the token owner's or every subscriber's open HUMBEX
//! orders on the symbol: resting limits and untriggered entries, not TP/SL) and
//! `cancel_after_secs`, a durable timer (`orders.cancel_at`, set at submission) swept here, so a
//! restart does not forget it.

use std::sync::Arc;
use std::time::Duration;

use humbex_bybit::{BybitError, Credentials, OrderLinkId, OrderRef};
use humbex_shared::db::Statements;
use humbex_shared::store::orders;
use uuid::Uuid;

use crate::claim::ClaimedWork;
use crate::pipeline::Context;

/// How often due timers are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Cancel the open entries a `cancel` signal names. Each account's own refusals are logged; the
/// order rows follow the exchange's pushes (status `cancelled`).
pub async fn cancel_signal(ctx: &Context, work: &ClaimedWork) -> anyhow::Result<usize> {
    let users: Vec<Uuid> = work.targets.iter().map(|t| t.user_id).collect();
    let client = ctx.pool.get().await?;
    let rows = client
        .rows(orders::OPEN_ENTRIES.as_str(), &[&users, &work.signal.symbol])
        .await?;
    let mut cancelled = 0;
    for row in &rows {
        let api_key_id: Uuid = row.get("api_key_id");
        let Some(target) = work
            .targets
            .iter()
            .find(|t| t.api_key.as_ref().is_some_and(|k| k.id == api_key_id))
        else {
            continue;
        };
        let key = target.api_key.as_ref().expect("found by its key");
        let (key_row, stored) = key.sealed(target.user_id);
        let credentials = ctx
            .keys
            .credentials(key_row, stored)
            .map_err(|e| anyhow::anyhow!("API key {api_key_id}: {e}"))?;
        if cancel_one(ctx, &credentials, row.get("symbol"), row.get("order_link_id")).await? {
            cancelled += 1;
        }
    }
    Ok(cancelled)
}

/// True when the exchange took the cancel; a definitive refusal (already filled or gone) is false.
#[tracing::instrument(skip(ctx, credentials))]
async fn cancel_one(
    ctx: &Context,
    credentials: &Credentials,
    symbol: &str,
    order_link_id: Option<String>,
) -> anyhow::Result<bool> {
    let Some(link) = order_link_id else {
        return Ok(false);
    };
    let link = OrderLinkId::parse(link).map_err(|e| anyhow::anyhow!("{e}"))?;
    match ctx
        .rest
        .cancel_order(credentials, symbol, &OrderRef::OrderLinkId(link))
        .await
    {
        Ok(_) => Ok(true),
        Err(e @ BybitError::Rejected { .. }) => {
            tracing::info!(error = %e, "cancel refused (filled or gone already)");
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// Sweep due `cancel_after_secs` timers forever.
pub async fn sweep(ctx: Arc<Context>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sweep_once(&ctx).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "cancel-after sweep failed; retried next tick"
            );
        }
    }
}

async fn sweep_once(ctx: &Context) -> anyhow::Result<()> {
    let client = ctx.pool.get().await?;
    let due = client.rows(orders::DUE_CANCELS.as_str(), &[&100_i64]).await?;
    for row in &due {
        let id: Uuid = row.get("id");
        let api_key_id: Uuid = row.get("api_key_id");
        // The account's stream is open (the order was sent through it); after a restart it is
        // opened at start-up, and the timer waits until then.
        let Some(credentials) = ctx.confirmer.credentials(api_key_id) else {
            continue;
        };
        match cancel_one(ctx, &credentials, row.get("symbol"), row.get("order_link_id")).await {
            Ok(_) => {
                // Sent or definitively refused: the timer has done its part either way.
                client.run(orders::CANCEL_SENT, &[&id]).await?;
            }
            Err(e) => tracing::warn!(order_id = %id, error = %e, "cancel after its time not sent; retried"),
        }
    }
    Ok(())
}
