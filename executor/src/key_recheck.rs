//! The periodic re-check of every usable exchange key
//! (docs/security.md#ip-binding-and-the-periodic-re-check): a user can widen a key on Bybit's site
//! after registering it (add Withdraw, drop the IP binding), so every KEY_RECHECK_INTERVAL_SECS the
//! executor asks GET /v5/user/query-api again, signed with each key, and marks unusable any key the
//! allow-list now refuses, exactly as an order refused with 10003/10004/10005/10010 does. A marked
//! key is never sent another order (the send path reads `unusable_at` with the order row).
//!
//! The schedule is durable: a key is due once its `permissions_checked_at` (set when it was added,
//! and by every passing re-check) is older than the interval, and the task looks for due keys every
//! interval or every hour, whichever is shorter. So a restart neither skips a check nor re-checks
//! every key at once (a freshly started executor with just-registered keys asks nothing).
//!
//! It runs in the executor because the executor is what trades with the keys: it already holds
//! them decrypted, and its query-api call leaves from the address Bybit will see on orders, so an
//! IP binding that no longer matches shows up as the same 10010 an order would get.

use std::sync::Arc;
use std::time::Duration;

use humbex_bybit::{BybitError, KeyPolicy};
use humbex_shared::api_key_store::{self as store, StoredKey};
use uuid::Uuid;

use crate::pipeline::Context;

/// What one pass found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecheckReport {
    pub checked: usize,
    pub still_acceptable: usize,
    /// Marked unusable by this pass.
    pub disabled: Vec<Uuid>,
    /// The exchange could not be asked (network, 5xx, rate limit): left as they were until the
    /// next pass.
    pub unknown: usize,
}

/// Look for due keys at start-up and then every `interval` (at most an hour), until dropped.
pub async fn run(ctx: Arc<Context>, interval: Duration, policy: KeyPolicy) {
    let mut every = tokio::time::interval(interval.min(Duration::from_secs(3600)));
    // After a stall, one pass is enough; a burst of catch-up passes would only repeat it.
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match recheck_due(&ctx, &policy, interval).await {
            Ok(report) if report.checked == 0 => tracing::debug!("no exchange key due for a re-check"),
            Ok(report) => tracing::info!(
                checked = report.checked,
                still_acceptable = report.still_acceptable,
                disabled = report.disabled.len(),
                unknown = report.unknown,
                "exchange keys re-checked"
            ),
            Err(e) => tracing::warn!(error = ?e, "re-checking exchange keys failed; the next pass retries"),
        }
    }
}

/// One pass over every key that is neither revoked nor unusable and was last checked more than
/// `interval` ago.
#[tracing::instrument(skip_all)]
pub async fn recheck_due(
    ctx: &Context,
    policy: &KeyPolicy,
    interval: Duration,
) -> anyhow::Result<RecheckReport> {
    let due = store::due_for_recheck(&**ctx.pool.get().await?, interval).await?;
    let mut report = RecheckReport::default();
    for key in &due {
        report.checked += 1;
        match recheck_one(ctx, policy, key).await? {
            Verdict::Acceptable => report.still_acceptable += 1,
            Verdict::Disabled => report.disabled.push(key.row.id),
            Verdict::Unknown => report.unknown += 1,
        }
    }
    Ok(report)
}

enum Verdict {
    Acceptable,
    Disabled,
    Unknown,
}

#[tracing::instrument(skip_all, fields(api_key_id = %key.row.id, user_id = %key.row.user_id))]
async fn recheck_one(ctx: &Context, policy: &KeyPolicy, key: &StoredKey) -> anyhow::Result<Verdict> {
    let api_key_id = key.row.id;
    let credentials = match ctx.keys.credentials(key.row, key.sealed.stored()) {
        Ok(c) => c,
        Err(e) => {
            // A configuration error or a tampered row, never the key's own fault: left usable.
            tracing::error!(error = %e, "key re-check: the stored API key cannot be decrypted; the key stays as it was");
            return Ok(Verdict::Unknown);
        }
    };
    let info = match ctx.rest.query_api(&credentials).await {
        Ok(answer) => answer.value,
        Err(e @ BybitError::KeyUnusable { .. }) => {
            ctx.confirmer
                .disable_key(api_key_id, &format!("daily key re-check: {e}"))
                .await?;
            return Ok(Verdict::Disabled);
        }
        Err(e) => {
            tracing::warn!(error = %e, "key re-check: the exchange could not be asked; the key stays as it was");
            return Ok(Verdict::Unknown);
        }
    };
    let verdict = policy.evaluate(&info);
    if !verdict.is_acceptable() {
        ctx.confirmer
            .disable_key(api_key_id, &format!("daily key re-check: {}", verdict.message()))
            .await?;
        return Ok(Verdict::Disabled);
    }
    store::mark_checked(&**ctx.pool.get().await?, api_key_id).await?;
    Ok(Verdict::Acceptable)
}
