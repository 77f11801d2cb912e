//! Settling signals in groups: what the exchange answered for each order and how each signal ended
//! (done, rejected, or given back for a retry), many signals per statement and per commit.
//!
//! One writer task takes whatever settlements are waiting and writes them in one statement; while
//! it waits for that commit the next group gathers. A lone signal is written at once (no timer),
//! so grouping costs latency nothing, and under load one WAL flush serves hundreds of orders.

use humbex_shared::db::Statements;
use std::time::Duration;

use anyhow::Context as _;
use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use humbex_shared::store::orders;

use crate::orders::Outcome;

/// Settlements written by one statement at most.
const MAX_GROUP: usize = 512;
/// Tries of a group that PostgreSQL aborted as a deadlock (order rows are also written by the
/// confirmer, in its own order).
const DEADLOCK_TRIES: usize = 3;

/// How a claimed signal ends.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalEnd {
    /// Every order settled.
    Done,
    /// Nothing to trade, for this reason.
    Rejected(String),
    /// Some order is unsettled: the claim is given back and the signal tried again after this.
    Release(Duration),
    /// Only the answers are written; the signal is another executor's claim (an account owner
    /// placing the order a claimer wrote for it: docs/deployment.md#several-executors).
    Untouched,
}

/// One order's answer.
#[derive(Debug, Clone)]
pub struct OrderAnswer {
    pub order_id: Uuid,
    pub outcome: Outcome,
    pub attempts: i32,
}

/// Everything to write for one signal.
#[derive(Debug, Clone)]
pub struct Settlement {
    pub signal_id: Uuid,
    pub answers: Vec<OrderAnswer>,
    pub end: SignalEnd,
}

struct Job {
    settlement: Settlement,
    done: oneshot::Sender<Result<(), String>>,
}

/// Handle to the writer task; the task ends when the last handle is dropped.
#[derive(Clone)]
pub struct Settler {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Settler {
    /// Start the writer. Needs a Tokio runtime.
    pub fn start(pool: Pool, executor_id: String) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(pool, executor_id, rx));
        Settler { jobs }
    }

    /// Write `settlement` and return once it is committed (with its group).
    pub async fn settle(&self, settlement: Settlement) -> anyhow::Result<()> {
        let (done, committed) = oneshot::channel();
        self.jobs
            .send(Job { settlement, done })
            .map_err(|_| anyhow::anyhow!("the settlement writer has stopped"))?;
        committed
            .await
            .context("the settlement writer has stopped")?
            .map_err(|e| anyhow::anyhow!("settling failed: {e}"))
    }
}

async fn writer(pool: Pool, executor_id: String, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut group, MAX_GROUP).await > 0 {
        let settlements: Vec<&Settlement> = group.iter().map(|j| &j.settlement).collect();
        let mut result = Err(String::new());
        for _ in 0..DEADLOCK_TRIES {
            result = write(&pool, &executor_id, &settlements).await;
            match &result {
                // `write` puts the SQLSTATE first for database errors.
                Err(e) if e.starts_with(tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED.code()) => {
                    continue;
                }
                _ => break,
            }
        }
        if let Err(e) = &result {
            tracing::warn!(signals = group.len(), error = %e, "settling a group failed; its leases expire and the signals are retried");
        }
        for job in group.drain(..) {
            let _ = job.done.send(result.clone());
        }
    }
}

#[tracing::instrument(skip_all, fields(signals = settlements.len(), orders))]
async fn write(pool: &Pool, executor_id: &str, settlements: &[&Settlement]) -> Result<(), String> {
    let mut answers: Vec<&OrderAnswer> = settlements.iter().flat_map(|s| &s.answers).collect();
    answers.sort_by_key(|a| a.order_id);
    tracing::Span::current().record("orders", answers.len());
    let mut signals: Vec<&Settlement> = settlements
        .iter()
        .copied()
        .filter(|s| s.end != SignalEnd::Untouched)
        .collect();
    signals.sort_by_key(|s| s.signal_id);

    let mut order_ids = Vec::with_capacity(answers.len());
    let mut statuses = Vec::with_capacity(answers.len());
    let mut exchange_ids = Vec::with_capacity(answers.len());
    let mut codes = Vec::with_capacity(answers.len());
    let mut messages = Vec::with_capacity(answers.len());
    let mut attempts = Vec::with_capacity(answers.len());
    for a in &answers {
        let (status, exchange_id, code, message): (&str, Option<&str>, Option<&str>, Option<&str>) = match &a
            .outcome
        {
            Outcome::Submitted { exchange_order_id } => ("submitted", Some(exchange_order_id), None, None),
            Outcome::Rejected { code, message } => ("rejected", None, code.as_deref(), Some(message)),
            Outcome::Failed { message } => ("failed", None, None, Some(message)),
            Outcome::Unsettled { message } => ("pending", None, None, Some(message)),
        };
        order_ids.push(a.order_id);
        statuses.push(status);
        exchange_ids.push(exchange_id);
        codes.push(code);
        messages.push(message);
        attempts.push(a.attempts);
    }
    let signal_ids: Vec<Uuid> = signals.iter().map(|s| s.signal_id).collect();
    let mut ends = Vec::with_capacity(signals.len());
    let mut reasons = Vec::with_capacity(signals.len());
    let mut retry_in = Vec::with_capacity(signals.len());
    for s in &signals {
        let (end, reason, retry): (&str, Option<&str>, f64) = match &s.end {
            SignalEnd::Done => ("done", None, 0.0),
            SignalEnd::Rejected(reason) => ("rejected", Some(reason), 0.0),
            SignalEnd::Release(after) => ("release", None, after.as_secs_f64()),
            // Filtered out above: nothing of the signal is written.
            SignalEnd::Untouched => continue,
        };
        ends.push(end);
        reasons.push(reason);
        retry_in.push(retry);
    }

    let client = pool.get().await.map_err(|e| e.to_string())?;
    client
        .row(
            orders::SETTLE.as_str(),
            &[
                &executor_id,
                &order_ids,
                &statuses,
                &exchange_ids,
                &codes,
                &messages,
                &attempts,
                &signal_ids,
                &ends,
                &reasons,
                &retry_in,
            ],
        )
        .await
        .map_err(|e| match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        })?;
    // Committed: each answered order is counted once in the status it reached ("pending" is no
    // status reached: the order is tried again). Settled orders are the planned ones: origin `signal`.
    let metrics = humbex_shared::metrics::metrics();
    for status in statuses.iter().filter(|s| **s != "pending") {
        metrics.order("signal", status);
    }
    Ok(())
}
