//! One claimed signal, start to finish: find its target accounts, size each order, commit every
//! order row, then send the pending ones (accounts in parallel) and record what the exchange said.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use humbex_bybit::BybitRest;
use humbex_shared::domain::Action;
use rust_decimal::Decimal;

use crate::claim::{self, ClaimedSignal};
use crate::instruments::InstrumentCache;
use crate::keys::KeyCache;
use crate::orders::{self, Outcome, PlannedOrder, Target};
use crate::plan::{self, ClosePlan, PlannedQty, Sizing};
use crate::submit::{self, AccountPacer};

/// How soon a signal with unsettled orders is tried again.
const UNSETTLED_RETRY: Duration = Duration::from_secs(5);

/// Everything the pipeline shares across signals; built once per executor.
pub struct Context {
    pub executor_id: String,
    /// Signals a task is working on now: the only leases that are renewed.
    pub in_flight: std::sync::Mutex<std::collections::HashSet<uuid::Uuid>>,
    /// Keeps every account's private stream open and the order rows true to the exchange.
    pub confirmer: crate::confirm::Confirmer,
    pub pool: Pool,
    pub rest: BybitRest,
    pub keys: KeyCache,
    pub instruments: InstrumentCache,
    pub pacer: AccountPacer,
}

/// Process one claimed signal. Errors leave the claim to expire, so another pass retries it.
#[tracing::instrument(skip_all, fields(signal_id = %signal.id, attempt = signal.attempts))]
pub async fn process(ctx: Arc<Context>, signal: ClaimedSignal) -> anyhow::Result<()> {
    crate::failpoint::hit(crate::failpoint::AFTER_CLAIM);
    let client = ctx.pool.get().await?;
    let action =
        Action::parse(&signal.action).ok_or_else(|| anyhow::anyhow!("unknown action {}", signal.action))?;
    let targets = orders::targets(&client, signal.user_id, signal.strategy_id).await?;
    if targets.is_empty() {
        let reason = if signal.strategy_id.is_some() {
            "the strategy has no subscribers with an active subscription"
        } else {
            "the user no longer exists"
        };
        claim::finish(&client, &ctx.executor_id, signal.id, Some(reason)).await?;
        return Ok(());
    }

    let mut planned = Vec::with_capacity(targets.len());
    for target in &targets {
        match plan_one(&ctx, &signal, action, target).await {
            Ok(p) => planned.push(p),
            Err(e) => {
                // Could not plan (exchange unreachable for a position read, say): try the signal
                // again soon rather than guess.
                tracing::warn!(user_id = %target.user_id, error = %e, "planning failed; signal released for a retry");
                claim::release(&client, &ctx.executor_id, signal.id, UNSETTLED_RETRY).await?;
                return Ok(());
            }
        }
    }
    orders::insert_planned(&client, signal.id, &signal.symbol, &planned).await?;
    drop(client);

    let pending = {
        let client = ctx.pool.get().await?;
        orders::pending_for_signal(&client, signal.id).await?
    };
    let sends = pending.into_iter().map(|order| {
        let ctx = ctx.clone();
        async move { send_one(&ctx, order).await }
    });
    let results = futures_util::future::join_all(sends).await;
    let mut unsettled = false;
    for result in results {
        match result {
            Ok(settled) => unsettled |= !settled,
            Err(e) => {
                tracing::warn!(error = ?e, "recording an order outcome failed");
                unsettled = true;
            }
        }
    }
    let client = ctx.pool.get().await?;
    if unsettled {
        claim::release(&client, &ctx.executor_id, signal.id, UNSETTLED_RETRY).await?;
    } else {
        claim::finish(&client, &ctx.executor_id, signal.id, None).await?;
    }
    Ok(())
}

/// One target's order row: what to send, or why nothing is sent.
async fn plan_one(
    ctx: &Context,
    signal: &ClaimedSignal,
    action: Action,
    target: &Target,
) -> anyhow::Result<PlannedOrder> {
    let nominal_side = if action == Action::Buy { "buy" } else { "sell" };
    let skip = |reason: String| PlannedOrder {
        user_id: target.user_id,
        api_key_id: target.api_key.as_ref().map(|k| k.id),
        side: nominal_side,
        qty: None,
        reduce_only: action == Action::Close,
        skip_reason: Some(reason),
    };
    if let Some(reason) = &target.inactive_reason {
        return Ok(skip(reason.clone()));
    }
    let Some(key) = &target.api_key else {
        return Ok(skip("the user has no usable API key".into()));
    };
    match action {
        Action::Buy | Action::Sell => {
            let Some(qty) = signal.quantity else {
                return Ok(skip("the signal has no quantity".into()));
            };
            let lot = ctx.instruments.lot_rules(&signal.symbol).await?;
            let sizing = Sizing {
                size_multiplier: target.size_multiplier,
                max_qty: target.max_qty,
            };
            Ok(match plan::market_quantity(qty, sizing, lot) {
                PlannedQty::Trade(qty) => PlannedOrder {
                    user_id: target.user_id,
                    api_key_id: Some(key.id),
                    side: nominal_side,
                    qty: Some(qty),
                    reduce_only: false,
                    skip_reason: None,
                },
                PlannedQty::Skip(reason) => skip(reason),
            })
        }
        Action::Close => {
            let credentials = ctx
                .keys
                .credentials(key.id, target.user_id, &key.key_enc, &key.secret_enc)
                .map_err(|e| anyhow::anyhow!("API key {}: {e}", key.id))?;
            let positions = ctx.rest.position_list(&credentials, &signal.symbol).await?.value;
            let signed: Decimal = positions
                .iter()
                .map(|p| match p.side {
                    Some(humbex_bybit::Side::Buy) => p.size,
                    Some(humbex_bybit::Side::Sell) => -p.size,
                    None => Decimal::ZERO,
                })
                .sum();
            Ok(match plan::close_position(signed) {
                ClosePlan::Reduce { sell, qty } => PlannedOrder {
                    user_id: target.user_id,
                    api_key_id: Some(key.id),
                    side: if sell { "sell" } else { "buy" },
                    qty: Some(qty),
                    reduce_only: true,
                    skip_reason: None,
                },
                ClosePlan::Skip(reason) => skip(reason),
            })
        }
    }
}

/// Send one pending order and record the outcome. Returns false when it is still unsettled.
async fn send_one(ctx: &Context, order: orders::PendingOrder) -> anyhow::Result<bool> {
    let client = ctx.pool.get().await?;
    if !order.key_usable {
        let outcome = Outcome::Rejected {
            code: None,
            message: "the API key was revoked or marked unusable before the order was sent".into(),
        };
        orders::record(&client, order.id, &outcome, order.attempts).await?;
        return Ok(true);
    }
    let credentials =
        match ctx
            .keys
            .credentials(order.api_key_id, order.user_id, &order.key_enc, &order.secret_enc)
        {
            Ok(c) => c,
            Err(e) => {
                let message = format!("the stored API key cannot be decrypted: {e}");
                orders::mark_key_unusable(&client, order.api_key_id, &message).await?;
                orders::record(
                    &client,
                    order.id,
                    &Outcome::Rejected { code: None, message },
                    order.attempts,
                )
                .await?;
                return Ok(true);
            }
        };
    drop(client); // no pooled connection is held across the exchange call
    // The account's private stream is open before its first order, so the fill push is not missed;
    // if it cannot open now, reconciliation over REST still confirms the order.
    if let Err(e) = ctx
        .confirmer
        .ensure_account(order.api_key_id, credentials.clone())
        .await
    {
        tracing::warn!(api_key_id = %order.api_key_id, error = %e, "private stream not ready; relying on reconciliation");
    }
    crate::failpoint::hit(crate::failpoint::BEFORE_POST);
    let submission = submit::submit(&ctx.rest, &ctx.pacer, &credentials, &order).await;
    crate::failpoint::hit(crate::failpoint::AFTER_ANSWER);
    let client = ctx.pool.get().await?;
    if let Some(reason) = &submission.key_unusable {
        orders::mark_key_unusable(&client, order.api_key_id, reason).await?;
        ctx.keys.forget(order.api_key_id);
    }
    orders::record(&client, order.id, &submission.outcome, submission.attempts).await?;
    Ok(!matches!(submission.outcome, Outcome::Unsettled { .. }))
}
