//! The owner's half of a signal that another executor claimed (docs/deployment.md#several-executors):
//! the claimer writes every order row and places those of the accounts it owns; each other owner,
//! told on `humbex_accounts` (or by its own sweep), places the pending orders of its accounts here
//! and records their answers without touching the signal.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use humbex_shared::db::Statements;
use humbex_shared::store::orders as order_sql;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

use crate::orders::{Outcome, PendingOrder};
use crate::pipeline::{self, Context};
use crate::settle::{Settlement, SignalEnd};

/// Orders read by one statement at most.
const PAGE: i64 = 512;
/// Accounts whose orders are being sent at once.
const CONCURRENCY: usize = 256;
/// How soon an order left unsettled (the exchange could not be asked) is tried again.
const UNSETTLED_RETRY: Duration = Duration::from_secs(5);

/// Orders this task is sending now, and those to leave alone until a time.
#[derive(Default)]
struct Sending {
    now: HashSet<Uuid>,
    later: HashMap<Uuid, Instant>,
}

/// Place the pending orders of owned accounts whenever told to (or every `poll_interval`), until
/// `stop` is notified; then let the orders in flight finish and return.
pub async fn run(ctx: Arc<Context>, poll_interval: Duration, stop: Arc<tokio::sync::Notify>) {
    let sending = Arc::new(Mutex::new(Sending::default()));
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut in_flight = JoinSet::new();
    let mut every = tokio::time::interval(poll_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.notified() => break,
            _ = every.tick() => {}
            _ = ctx.ownership.pending.notified() => {}
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => continue,
        }
        if ctx.ownership.count() == 0 {
            continue;
        }
        if let Err(e) = sweep(&ctx, &sending, &permits, &mut in_flight).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "looking for owned accounts' pending orders failed"
            );
        }
    }
    // Bounded by the executor's own shutdown grace, which aborts this task when it runs out.
    while in_flight.join_next().await.is_some() {}
}

/// Read the pending orders of owned accounts page by page and start sending each one not already
/// on its way.
async fn sweep(
    ctx: &Arc<Context>,
    sending: &Arc<Mutex<Sending>>,
    permits: &Arc<Semaphore>,
    in_flight: &mut JoinSet<()>,
) -> anyhow::Result<()> {
    loop {
        let skip: Vec<Uuid> = {
            let mut s = sending.lock().expect("sending lock");
            let now = Instant::now();
            s.later.retain(|_, at| *at > now);
            s.now.iter().chain(s.later.keys()).copied().collect()
        };
        let orders: Vec<PendingOrder> = {
            let client = ctx.pool.get().await?;
            client
                .rows(order_sql::PENDING_OF_OWNER, &[&ctx.executor_id, &PAGE, &skip])
                .await?
                .iter()
                .map(PendingOrder::from_row)
                .collect()
        };
        let found = orders.len() as i64;
        // One task per account, sending its orders in turn: they are paced per account anyway,
        // and one account's stream is opened once rather than by every order at the same time.
        let mut by_account: HashMap<Uuid, Vec<PendingOrder>> = HashMap::new();
        for order in orders {
            if ctx.ownership.owns(order.api_key_id) {
                by_account.entry(order.api_key_id).or_default().push(order);
            }
        }
        for (_, orders) in by_account {
            {
                let mut s = sending.lock().expect("sending lock");
                s.now.extend(orders.iter().map(|o| o.id));
            }
            let permit = permits.clone().acquire_owned().await?;
            let (ctx, sending) = (ctx.clone(), sending.clone());
            in_flight.spawn(async move {
                for order in orders {
                    send_and_record(&ctx, &sending, order).await;
                }
                drop(permit);
            });
        }
        if found < PAGE {
            return Ok(());
        }
    }
}

/// Place one order and record its answer (leaving its signal alone); an order left unsettled, or
/// whose answer could not be written, is left alone for a while before it is tried again.
async fn send_and_record(ctx: &Context, sending: &Mutex<Sending>, order: PendingOrder) {
    let order_id = order.id;
    let signal_id = order.signal_id;
    let answer = pipeline::send_one(ctx, order, None).await;
    let unsettled = matches!(answer.outcome, Outcome::Unsettled { .. });
    let settled = ctx
        .settler
        .settle(Settlement {
            signal_id,
            answers: vec![answer],
            end: SignalEnd::Untouched,
        })
        .await;
    let mut s = sending.lock().expect("sending lock");
    s.now.remove(&order_id);
    if unsettled || settled.is_err() {
        s.later.insert(order_id, Instant::now() + UNSETTLED_RETRY);
    }
    drop(s);
    if let Err(e) = settled {
        tracing::warn!(%order_id, error = ?e, "an owned order's answer was not recorded; retried later");
    }
}
