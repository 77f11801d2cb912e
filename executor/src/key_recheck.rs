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

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use humbex_bybit::{BybitError, evaluate_api_key_for};
use uuid::Uuid;

use crate::pipeline::Context;

/// Which keys are acceptable: the same rule ingest applies when a key is added.
#[derive(Debug, Clone, Default)]
pub struct KeyPolicy {
    /// BYBIT_EGRESS_IPS: when not empty, the key must be bound to one of them.
    pub egress_ips: Vec<IpAddr>,
    /// Mainnet without ALLOW_UNBOUND_KEYS: a key with no IP binding is refused.
    pub require_ip_binding: bool,
}

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
    let rows = ctx
        .pool
        .get()
        .await?
        .query(
            "SELECT id, user_id, api_key_enc, api_secret_enc FROM api_keys \
             WHERE revoked_at IS NULL AND unusable_at IS NULL \
               AND (permissions_checked_at IS NULL \
                    OR permissions_checked_at <= now() - make_interval(secs => $1)) \
             ORDER BY id",
            &[&interval.as_secs_f64()],
        )
        .await?;
    let mut report = RecheckReport::default();
    for row in &rows {
        let (api_key_id, user_id): (Uuid, Uuid) = (row.get(0), row.get(1));
        report.checked += 1;
        match recheck_one(ctx, policy, api_key_id, user_id, row.get(2), row.get(3)).await? {
            Verdict::Acceptable => report.still_acceptable += 1,
            Verdict::Disabled => report.disabled.push(api_key_id),
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

#[tracing::instrument(skip(ctx, policy, key_enc, secret_enc), fields(api_key_id = %api_key_id, user_id = %user_id))]
async fn recheck_one(
    ctx: &Context,
    policy: &KeyPolicy,
    api_key_id: Uuid,
    user_id: Uuid,
    key_enc: &[u8],
    secret_enc: &[u8],
) -> anyhow::Result<Verdict> {
    let credentials = match ctx.keys.credentials(api_key_id, user_id, key_enc, secret_enc) {
        Ok(c) => c,
        Err(e) => {
            disable(
                ctx,
                api_key_id,
                &format!("the stored API key cannot be decrypted: {e}"),
            )
            .await?;
            return Ok(Verdict::Disabled);
        }
    };
    let info = match ctx.rest.query_api(&credentials).await {
        Ok(answer) => answer.value,
        Err(e @ BybitError::KeyUnusable { .. }) => {
            disable(ctx, api_key_id, &format!("daily key re-check: {e}")).await?;
            return Ok(Verdict::Disabled);
        }
        Err(e) => {
            tracing::warn!(error = %e, "key re-check: the exchange could not be asked; the key stays as it was");
            return Ok(Verdict::Unknown);
        }
    };
    let verdict = evaluate_api_key_for(&info, &policy.egress_ips);
    let mut problems: Vec<String> = verdict.problems.iter().map(ToString::to_string).collect();
    if policy.require_ip_binding && !verdict.ip_bound {
        problems.push("the key is no longer bound to an IP address, which mainnet requires".into());
    }
    if !problems.is_empty() {
        disable(
            ctx,
            api_key_id,
            &format!("daily key re-check: key refused: {}", problems.join("; ")),
        )
        .await?;
        return Ok(Verdict::Disabled);
    }
    ctx.pool
        .get()
        .await?
        .execute(
            "UPDATE api_keys SET permissions_checked_at = now() WHERE id = $1",
            &[&api_key_id],
        )
        .await?;
    Ok(Verdict::Acceptable)
}

async fn disable(ctx: &Context, api_key_id: Uuid, reason: &str) -> anyhow::Result<()> {
    tracing::warn!(api_key_id = %api_key_id, %reason, "exchange key marked unusable");
    let client = ctx.pool.get().await?;
    crate::orders::mark_key_unusable(&client, api_key_id, reason).await?;
    ctx.keys.forget(api_key_id);
    Ok(())
}
