//! The confirmation writer: one task takes the order updates, executions and positions that every
//! account's stream (and reconciliation) queued and writes them in one transaction per batch, so 1,000
//! accounts' pushes cost a handful of commits (WAL flushes) instead of one each.
//!
//! A batch is whatever queued while the previous one was being written: a lone event is written
//! at once, with no timer. One task and one FIFO queue keep each account's events in the order
//! its stream delivered them.
//!
//! The writer keeps its pool connection between batches: during a fan-out the order path holds
//! every other connection and queues for more, and a writer queueing behind it for each batch
//! recorded no fill until the last order was acknowledged.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

use super::store::{self, Event, Outcome};
use super::{Inner, Writes};

/// Events written per transaction at most, so one commit stays short and its waiters are answered.
pub(super) const MAX_BATCH: usize = 2_048;
/// Events queued at most; a stream whose event does not fit waits (its socket buffers meanwhile).
pub(super) const QUEUE: usize = 16_384;

pub(super) struct Request {
    pub api_key_id: Uuid,
    pub event: Event,
    /// Where the result goes once committed; `None` for pushes, whose failures are logged here
    /// and left to reconciliation.
    pub reply: Option<oneshot::Sender<anyhow::Result<Outcome>>>,
    pub queued_at: Instant,
}

pub(super) fn channel() -> (Writes, mpsc::Receiver<Request>) {
    mpsc::channel(QUEUE)
}

pub(super) async fn run(inner: Arc<Inner>, mut queue: mpsc::Receiver<Request>) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut connection = None;
    loop {
        let stopping = tokio::select! {
            biased;
            received = queue.recv_many(&mut batch, MAX_BATCH) => if received == 0 {
                return;
            } else {
                false
            },
            _ = shutdown.wait_for(|stop| *stop) => true,
        };
        if stopping {
            // What was queued before the shutdown is still written.
            queue.close();
            while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
                write(&inner, &mut connection, &mut batch).await;
            }
            return;
        }
        write(&inner, &mut connection, &mut batch).await;
    }
}

/// Writes and answers the batch, leaving it empty.
async fn write(inner: &Inner, connection: &mut Option<deadpool_postgres::Client>, batch: &mut Vec<Request>) {
    let started = Instant::now();
    let waited = batch
        .iter()
        .map(|r| started.saturating_duration_since(r.queued_at))
        .max()
        .unwrap_or_default();
    let events: Vec<(Uuid, &Event)> = batch.iter().map(|r| (r.api_key_id, &r.event)).collect();
    let counters = &inner.counters;
    counters.write_batches.fetch_add(1, Ordering::Relaxed);
    counters
        .largest_batch
        .fetch_max(events.len() as u64, Ordering::Relaxed);
    let outcomes = match write_in_one_transaction(inner, connection, &events).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) if batch.len() > 1 => {
            // One bad event (or a lost connection) must not cost the others their write.
            counters.batches_split.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                events = batch.len(),
                error = format!("{e:#}"),
                "confirmation batch failed; writing its events one by one"
            );
            let mut outcomes = Vec::with_capacity(events.len());
            for event in &events {
                outcomes.push(
                    write_in_one_transaction(inner, connection, std::slice::from_ref(event))
                        .await
                        .map(|mut one| one.remove(0)),
                );
            }
            outcomes
        }
        Err(e) => vec![Err(e)],
    };
    let events_written = batch.len();
    for (request, outcome) in batch.drain(..).zip(outcomes) {
        answer(inner, request, outcome);
    }
    tracing::debug!(
        events = events_written,
        waited_ms = duration_ms(waited),
        took_ms = duration_ms(started.elapsed()),
        "confirmation batch written"
    );
}

async fn write_in_one_transaction(
    inner: &Inner,
    connection: &mut Option<deadpool_postgres::Client>,
    events: &[(Uuid, &Event)],
) -> anyhow::Result<Vec<Outcome>> {
    let client = match connection {
        Some(client) => client,
        None => connection.insert(inner.pool.get().await.context("database pool")?),
    };
    let written = store::apply_batch(client, events).await;
    if written.is_err() {
        // Back to the pool, which checks it before lending it again (it may be broken).
        *connection = None;
    }
    Ok(written?)
}

fn answer(inner: &Inner, request: Request, outcome: anyhow::Result<Outcome>) {
    match (&request.event, &outcome) {
        (Event::Order(order), Ok(Outcome::Order(Some(row)))) => {
            if let Some(job) = &row.protect {
                inner.request_protection(job.clone());
            }
            inner
                .counters
                .order_updates_applied
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(order_id = %row.order_id, status = %row.status, order_link_id = %order.order_link_id, "order state applied");
        }
        (Event::Order(order), Ok(_)) => {
            tracing::debug!(order_link_id = %order.order_link_id, api_key_id = %request.api_key_id, "order update for an order that is not ours; ignored")
        }
        (Event::Execution(fill), Ok(Outcome::Fill(Some(order_id)))) => {
            inner.counters.fills_inserted.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%order_id, exec_id = %fill.exec_id, "fill recorded");
        }
        (Event::Execution(fill), Ok(_)) => {
            tracing::debug!(exec_id = %fill.exec_id, order_link_id = %fill.order_link_id, "fill already recorded or not ours")
        }
        (Event::Position(position), Ok(Outcome::Position(Some(armed)))) => {
            inner.watch_break_even(request.api_key_id, position, armed);
        }
        (Event::Position(_), Ok(_)) => {}
        (Event::Position(position), Err(e)) => {
            tracing::warn!(api_key_id = %request.api_key_id, symbol = %position.symbol, error = format!("{e:#}"), "position not recorded; the next push or catch-up writes it")
        }
        (Event::Order(order), Err(e)) if request.reply.is_none() => {
            tracing::error!(order_link_id = %order.order_link_id, error = format!("{e:#}"), "order push not applied; reconciliation will catch up")
        }
        (Event::Execution(fill), Err(e)) if request.reply.is_none() => {
            tracing::error!(exec_id = %fill.exec_id, error = format!("{e:#}"), "fill push not recorded; reconciliation will catch up")
        }
        (_, Err(_)) => {}
    }
    if let Some(reply) = request.reply {
        // The caller may have gone away (shutdown); the write stands either way.
        let _ = reply.send(outcome);
    }
}

fn duration_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
