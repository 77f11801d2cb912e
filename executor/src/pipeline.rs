//! A batch of claimed signals, start to finish: size each target's order, commit every order row
//! of the batch at once, then send the pending ones (accounts in parallel) and settle each signal
//! with what the exchange said.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use humbex_bybit::BybitRest;
use humbex_shared::domain::Action;
use rust_decimal::Decimal;

use std::collections::HashMap;

use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::claim::{ClaimedSignal, ClaimedWork};
use crate::instruments::{InstrumentCache, RulesError};
use crate::keys::KeyCache;
use crate::orders::{self, Outcome, PendingOrder, PlannedOrder, SignalOrder, Target};
use crate::plan::{self, ClosePlan, PlannedQty, Sizing};
use crate::settle::{OrderAnswer, Settlement, Settler, SignalEnd};
use crate::submit::{self, AccountPacer};
use crate::trade::skip::SkipReason;

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
    /// Shared with the confirmer, which drops a disabled key from it.
    pub keys: Arc<KeyCache>,
    pub instruments: InstrumentCache,
    pub pacer: AccountPacer,
    /// Writes order answers and signal ends in groups.
    pub settler: Settler,
    /// The accounts being traded now, for ordering racing alerts (crate::account_order).
    pub accounts: Arc<crate::account_order::AccountGate>,
    /// The accounts this executor owns in the fleet: only their orders are placed here.
    pub ownership: crate::ownership::Ownership,
}

/// The last handle gone (the executor stopped or its task was aborted), the streams close.
impl Drop for Context {
    fn drop(&mut self) {
        self.confirmer.stop_now();
    }
}

/// While alive, the signal's lease is renewed and its concurrency permit held; dropped (however
/// its processing ends, even by a panic), the signal is left to its lease.
pub struct Held {
    ctx: Arc<Context>,
    signal_id: Uuid,
    _permit: OwnedSemaphorePermit,
}

impl Held {
    pub fn new(ctx: Arc<Context>, signal_id: Uuid, permit: OwnedSemaphorePermit) -> Self {
        ctx.in_flight.lock().expect("in-flight lock").insert(signal_id);
        Held {
            ctx,
            signal_id,
            _permit: permit,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Ok(mut set) = self.ctx.in_flight.lock() {
            set.remove(&self.signal_id);
        }
    }
}

/// What planning made of one signal.
enum Planned {
    Orders(Vec<PlannedOrder>),
    /// Finished as rejected: nobody to trade for.
    Nothing(String),
    /// Could not plan now: given back for a retry.
    Retry,
}

/// Process a batch of claimed signals: plan them all, commit all their order rows in one statement,
/// then send each signal's orders and settle it as soon as they are answered. Errors leave the
/// affected claims to expire, so another pass retries them.
#[tracing::instrument(skip_all, fields(signals = batch.len()))]
pub async fn process_batch(ctx: Arc<Context>, batch: Vec<(ClaimedWork, Held)>) {
    crate::failpoint::hit(crate::failpoint::AFTER_CLAIM);
    // Signals sharing an account go in waves, in arrival order (crate::account_order).
    let accounts: Vec<Vec<Uuid>> = batch
        .iter()
        .map(|(work, _)| crate::account_order::accounts_of(work))
        .collect();
    let wave_of = crate::account_order::waves(&accounts);
    let last_wave = wave_of.iter().copied().max().unwrap_or(0);
    let mut waves: Vec<Vec<(ClaimedWork, Held)>> = (0..=last_wave).map(|_| Vec::new()).collect();
    let mut wave_accounts: Vec<Vec<Uuid>> = (0..=last_wave).map(|_| Vec::new()).collect();
    for ((item, wave), accounts) in batch.into_iter().zip(wave_of).zip(accounts) {
        waves[wave].push(item);
        wave_accounts[wave].extend(accounts);
    }
    for (wave, mut accounts) in waves.into_iter().zip(wave_accounts) {
        accounts.sort_unstable();
        accounts.dedup();
        let _taken = ctx.accounts.take(accounts).await;
        process_wave(ctx.clone(), wave).await;
    }
}

/// One wave of a batch: no two of its signals share an account.
async fn process_wave(ctx: Arc<Context>, batch: Vec<(ClaimedWork, Held)>) {
    // Concurrently: a close reads each account's position over REST.
    let plans = futures_util::future::join_all(batch.iter().map(|(work, _)| plan_signal(&ctx, work))).await;
    let mut settling = JoinSet::new();
    let mut to_send = Vec::with_capacity(batch.len());
    let mut planned: Vec<(ClaimedWork, Vec<PlannedOrder>, Held)> = Vec::with_capacity(batch.len());
    for ((work, held), plan) in batch.into_iter().zip(plans) {
        let end = match plan {
            Ok(Planned::Orders(orders)) => {
                planned.push((work, orders, held));
                continue;
            }
            Ok(Planned::Nothing(reason)) => SignalEnd::Rejected(reason),
            Ok(Planned::Retry) => SignalEnd::Release(UNSETTLED_RETRY),
            Err(e) => {
                tracing::warn!(signal_id = %work.signal.id, error = ?e, "signal not planned; its lease will expire and it is retried");
                continue;
            }
        };
        let ctx = ctx.clone();
        settling.spawn(async move {
            let signal_id = work.signal.id;
            let settled = ctx
                .settler
                .settle(Settlement {
                    signal_id,
                    answers: Vec::new(),
                    end,
                })
                .await;
            drop(held);
            settled.map_err(|e| (signal_id, e))
        });
    }

    let rows: Vec<SignalOrder<'_>> = planned
        .iter()
        .flat_map(|(work, orders, _)| {
            orders.iter().map(|order| SignalOrder {
                signal_id: work.signal.id,
                symbol: &work.signal.symbol,
                order,
            })
        })
        .collect();
    let signal_ids: Vec<Uuid> = planned.iter().map(|(work, _, _)| work.signal.id).collect();
    let pending = match insert(&ctx, &rows, &signal_ids).await {
        Ok(pending) => Some(pending),
        Err(e) => {
            tracing::warn!(signals = signal_ids.len(), error = ?e, "order rows not written; the leases will expire and the signals are retried");
            None
        }
    };
    drop(rows);
    if let Some(pending) = pending {
        let skipped = planned
            .iter()
            .flat_map(|(_, orders, _)| orders)
            .filter(|o| o.skip_reason.is_some());
        for _ in skipped {
            humbex_shared::metrics::metrics().order("signal", "skipped");
        }
        // A signal with no row to send (all skipped, or all settled by an earlier claim) is done.
        let mut by_signal: HashMap<Uuid, Vec<PendingOrder>> = HashMap::with_capacity(signal_ids.len());
        for order in pending {
            by_signal.entry(order.signal_id).or_default().push(order);
        }
        for (work, _, held) in planned {
            to_send.push((
                work.signal.id,
                work.signal.received_at,
                by_signal.remove(&work.signal.id).unwrap_or_default(),
                held,
            ));
        }
    }
    for (signal_id, received_at, orders, held) in to_send {
        let ctx = ctx.clone();
        settling.spawn(async move {
            // Accounts in parallel; one account's orders in row order (a target sync's
            // reduce-only leg before its opening leg, which it frees the margin for).
            let mut by_account: Vec<Vec<PendingOrder>> = Vec::with_capacity(orders.len());
            let mut group_of: HashMap<Uuid, usize> = HashMap::with_capacity(orders.len());
            for order in orders {
                let next = by_account.len();
                let group = *group_of.entry(order.api_key_id).or_insert(next);
                if group == next {
                    by_account.push(Vec::with_capacity(1));
                }
                by_account[group].push(order);
            }
            let sends = by_account.into_iter().map(|group| {
                let ctx = &ctx;
                async move {
                    let mut answers = Vec::with_capacity(group.len());
                    for order in group {
                        answers.push(send_one(ctx, order, Some(received_at)).await);
                    }
                    answers
                }
            });
            let answers: Vec<OrderAnswer> = futures_util::future::join_all(sends)
                .await
                .into_iter()
                .flatten()
                .collect();
            let unsettled = answers
                .iter()
                .any(|a| matches!(a.outcome, Outcome::Unsettled { .. }));
            let end = if unsettled {
                SignalEnd::Release(UNSETTLED_RETRY)
            } else {
                SignalEnd::Done
            };
            let settled = ctx
                .settler
                .settle(Settlement {
                    signal_id,
                    answers,
                    end,
                })
                .await;
            drop(held);
            settled.map_err(|e| (signal_id, e))
        });
    }
    while let Some(done) = settling.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err((signal_id, e))) => {
                tracing::warn!(signal_id = %signal_id, error = ?e, "signal not settled; its lease will expire and it is retried");
            }
            Err(e) => {
                tracing::error!(error = %e, "a signal task panicked; its lease will expire and it is retried");
            }
        }
    }
}

/// Write the batch's order rows; returns those this executor places (the others are its accounts'
/// owners' to place: see [`crate::ownership::Ownership::keep_mine`]).
async fn insert(
    ctx: &Context,
    rows: &[SignalOrder<'_>],
    signal_ids: &[Uuid],
) -> anyhow::Result<Vec<PendingOrder>> {
    let client = ctx.pool.get().await?;
    let pending = orders::insert_planned(&client, rows, signal_ids).await?;
    Ok(ctx.ownership.keep_mine(&client, pending).await)
}

/// Plan every target of one signal.
async fn plan_signal(ctx: &Context, work: &ClaimedWork) -> anyhow::Result<Planned> {
    let signal = &work.signal;
    let action =
        Action::parse(&signal.action).ok_or_else(|| anyhow::anyhow!("unknown action {}", signal.action))?;
    if action == Action::Cancel {
        // No order rows: the cancelled orders' own rows follow the exchange's pushes.
        let cancelled = crate::cancel::cancel_signal(ctx, work).await?;
        tracing::info!(signal_id = %signal.id, cancelled, "cancel signal carried out");
        return Ok(Planned::Orders(Vec::new()));
    }
    if !signal.plain && signal.trade.is_none() {
        return Ok(Planned::Nothing(
            "the signal's v2 fields could not be read back; nothing was sent".into(),
        ));
    }
    if work.targets.is_empty() {
        let reason = if signal.strategy_id.is_some() {
            "the strategy has no subscribers with an active subscription"
        } else {
            "the user no longer exists"
        };
        return Ok(Planned::Nothing(reason.into()));
    }
    let mut planned = Vec::with_capacity(work.targets.len());
    for target in &work.targets {
        match plan_one(ctx, signal, action, target).await {
            Ok(p) => planned.extend(p),
            Err(e) => {
                // Could not plan (exchange unreachable for a position read, say): try the signal
                // again soon rather than guess.
                tracing::warn!(signal_id = %signal.id, user_id = %target.user_id, error = %e, "planning failed; signal released for a retry");
                return Ok(Planned::Retry);
            }
        }
    }
    Ok(Planned::Orders(planned))
}

/// One target's order row: what to send, or why nothing is sent.
async fn plan_one(
    ctx: &Context,
    signal: &ClaimedSignal,
    action: Action,
    target: &Target,
) -> anyhow::Result<Vec<PlannedOrder>> {
    let nominal_side = if action == Action::Buy { "buy" } else { "sell" };
    let skip = |reason: String| PlannedOrder {
        user_id: target.user_id,
        api_key_id: target.api_key.as_ref().map(|k| k.id),
        side: nominal_side,
        qty: None,
        reduce_only: action == Action::Close,
        skip_reason: Some(reason),
        skip_code: None,
        terms: orders::OrderTerms::default(),
    };
    if let Some(reason) = &target.inactive_reason {
        return Ok(vec![skip(reason.clone())]);
    }
    let Some(key) = &target.api_key else {
        return Ok(vec![skip("the user has no usable API key".into())]);
    };
    // The symbol's rules, read once for either planner. With SYMBOLS=* an alert may name a symbol
    // the exchange does not list: a reason on the row, not a retry. Any other failure is raised
    // only where the rules are used. (Cancel signals never get here.)
    let rules = match ctx.instruments.rules(&signal.symbol).await {
        Err(RulesError::NotListed(symbol)) => {
            let reason = SkipReason::UnknownSymbol { symbol };
            return Ok(vec![PlannedOrder {
                skip_code: Some(reason.stored_code()),
                ..skip(reason.to_string())
            }]);
        }
        other => other,
    };
    // A v2 signal, or a v1 signal whose strategy or subscription sets defaults (leverage, margin
    // mode, max_lag_secs), takes the v2 planner; a plain one with none keeps the short path.
    let has_defaults =
        target.defaults != Default::default() || signal.strategy_defaults != Default::default();
    if let Some(spec) = signal.trade.as_ref().filter(|_| !signal.plain || has_defaults) {
        return crate::plan_v2::plan_account(ctx, signal, action, spec, target, key, rules).await;
    }
    let single = match action {
        Action::Buy | Action::Sell => {
            let Some(qty) = signal.quantity else {
                return Ok(vec![skip("the signal has no quantity".into())]);
            };
            let lot = rules?.lot();
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
                    skip_code: None,
                    terms: orders::OrderTerms::default(),
                },
                // The one reason market_quantity skips for (the same code as the v2 sizing).
                PlannedQty::Skip(reason) => PlannedOrder {
                    skip_code: Some("below_min_qty".into()),
                    ..skip(reason)
                },
            })
        }
        Action::Close => {
            let (row, stored) = key.sealed(target.user_id);
            let credentials = ctx
                .keys
                .credentials(row, stored)
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
                    skip_code: None,
                    terms: orders::OrderTerms::default(),
                },
                ClosePlan::Skip(reason) => skip(reason),
            })
        }
        Action::Cancel => Ok(skip(
            "a cancel signal is carried out by crate::cancel, never planned as an order".into(),
        )),
    };
    single.map(|order| vec![order])
}

/// Send one pending order; the answer is settled with its signal's others. `received_at` is when
/// ingest stored its signal, for `humbex_signal_to_order_seconds` (`None` for an order another
/// executor claimed and routed here: its claim, not this send, is the signal's path to the order).
pub(crate) async fn send_one(
    ctx: &Context,
    order: PendingOrder,
    received_at: Option<chrono::DateTime<chrono::Utc>>,
) -> OrderAnswer {
    let answer = |outcome, attempts| OrderAnswer {
        order_id: order.id,
        outcome,
        attempts,
    };
    if !order.key_usable {
        let outcome = Outcome::Rejected {
            code: None,
            message: "the API key was revoked or marked unusable before the order was sent".into(),
        };
        return answer(outcome, order.attempts);
    }
    let (row, stored) = order.sealed_key();
    let credentials = match ctx.keys.credentials(row, stored) {
        Ok(c) => c,
        Err(e) => {
            // Not the key's fault: a wrong or missing encryption key (a configuration error the
            // start-up check names), or a ciphertext that is not this row's (tampering). Either
            // way the key stays as it is, so fixing the configuration brings every user back;
            // this order is failed, not sent.
            let message = format!("the stored API key cannot be decrypted: {e}");
            tracing::error!(api_key_id = %order.api_key_id, error = %e, "an API key does not open; the order is not sent and the key is left usable");
            return answer(Outcome::Failed { message }, order.attempts);
        }
    };
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
    if let (Outcome::Submitted { .. }, Some(received_at)) = (&submission.outcome, received_at) {
        // Wall clocks of two processes (or hosts): a skew below zero counts as zero.
        let waited = (chrono::Utc::now() - received_at).to_std().unwrap_or_default();
        humbex_shared::metrics::metrics().signal_to_order(waited);
    }
    if let Some(reason) = &submission.key_unusable {
        disable_key(ctx, order.api_key_id, reason).await;
    }
    answer(submission.outcome, submission.attempts)
}

/// Best effort: the order's own answer is recorded either way, and the exchange refuses the key
/// again next time, which marks it then.
async fn disable_key(ctx: &Context, api_key_id: Uuid, reason: &str) {
    if let Err(e) = ctx.confirmer.disable_key(api_key_id, reason).await {
        tracing::warn!(api_key_id = %api_key_id, error = ?e, "could not mark the API key unusable");
    }
}
