//! Whole-pipeline scenarios: webhook → order at the exchange → fill in the database, one signal
//! at a time (latency), one signal to many subscribers (fan-out), and a stored backlog (drain).
//!
//! Every instant is a wall-clock reading of this one machine: the client's before it sends, the
//! paper exchange's own `created_at` when it accepts an order (after parsing and checking the
//! signature, so slightly after it is received), and PostgreSQL's `now()` in the transaction that
//! writes the fill row (so slightly before that row commits).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::pipeline::{Pipeline, between, wait_for_fills};
use crate::report::{Row, row};

/// The executor spaces each account's orders 8 per second (Bybit allows 10): one-at-a-time
/// signals rotate over this many accounts so that no signal waits for its account's slot.
const LATENCY_ACCOUNTS: usize = 32;

pub async fn latency(signals: usize) -> anyhow::Result<Vec<Row>> {
    let mut p = Pipeline::start().await?;
    let traders = p.traders(LATENCY_ACCOUNTS, None).await?;
    p.start_executor(traders.len()).await?;
    let db = p.client().await?;
    // One unmeasured signal per account warms the key cache and each connection.
    let warm_up = traders.len();
    let mut sent: Vec<(DateTime<Utc>, Duration, String, DateTime<Utc>)> = Vec::new();
    let started = Instant::now();
    for i in 0..warm_up + signals {
        let t = &traders[i % traders.len()];
        let action = if (i / traders.len()) % 2 == 0 {
            "buy"
        } else {
            "sell"
        };
        let at = Utc::now();
        let clock = Instant::now();
        let id = p.signal(&t.token, action, &format!("lat-{i}")).await?;
        let round_trip = clock.elapsed();
        let fills = wait_for_fills(&db, &[id], 1, Duration::from_millis(1), Duration::from_secs(10)).await?;
        let (link, filled) = fills
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("no fill"))?;
        if i >= warm_up {
            sent.push((at, round_trip, link, filled));
        }
    }
    let elapsed = started.elapsed();
    let keys: Vec<&str> = traders.iter().map(|t| t.api_key.as_str()).collect();
    let at_exchange = p.exchange_times(&keys);
    // Where the time goes, from the rows' own timestamps (each `now()` of the writing transaction).
    let stamps: std::collections::HashMap<String, (DateTime<Utc>, DateTime<Utc>)> = db
        .query(
            "SELECT o.order_link_id, s.received_at, o.created_at FROM orders o \
             JOIN signals s ON s.id = o.signal_id",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            (
                r.get("order_link_id"),
                (r.get("received_at"), r.get("created_at")),
            )
        })
        .collect();
    let mut round_trips = Vec::new();
    let mut to_exchange = Vec::new();
    let mut to_fill = Vec::new();
    let mut stages: [Vec<Duration>; 4] = Default::default();
    for (at, round_trip, link, filled) in &sent {
        round_trips.push(*round_trip);
        let created = at_exchange.get(link);
        if let Some(created) = created {
            to_exchange.push(between(*at, *created));
        }
        to_fill.push(between(*at, *filled));
        if let (Some(created), Some((received, planned))) = (created, stamps.get(link)) {
            stages[0].push(between(*at, *received));
            stages[1].push(between(*received, *planned));
            stages[2].push(between(*planned, *created));
            stages[3].push(between(*created, *filled));
        }
    }
    p.shutdown().await;
    let [ingest, claim, send, confirm] = stages;
    Ok(vec![
        row("latency: webhook round trip (202)", 1, round_trips, elapsed),
        row("latency: webhook → order at exchange", 1, to_exchange, elapsed),
        row("latency: webhook → fill recorded", 1, to_fill, elapsed),
        row("  stage: webhook sent → signal INSERT", 1, ingest, elapsed),
        row("  stage: signal INSERT → order INSERT", 1, claim, elapsed),
        row("  stage: order INSERT → at exchange", 1, send, elapsed),
        row("  stage: at exchange → fill INSERT", 1, confirm, elapsed),
    ])
}

/// One strategy signal to `subscribers` accounts: the first with cold caches, then (after the
/// accounts' pacing slots are free again) a second one, the figure that counts.
pub async fn fan_out(subscribers: usize, executors: usize) -> anyhow::Result<Vec<Row>> {
    let mut p = Pipeline::start().await?;
    let (strategy, token) = p.strategy("fan-out").await?;
    let traders = p.traders(subscribers, Some(&strategy)).await?;
    // Several executors share the accounts (one stream each across them); the labels say how many.
    // In-process, this process holds both ends of every stream: past its open-files limit the
    // executors run as processes of their own.
    let descriptors = 2 * traders.len() as u64 + 1_000;
    if executors > 1 && open_files_limit().is_some_and(|limit| descriptors > limit) {
        p.start_executor_processes(executors, traders.len()).await?;
    } else {
        p.start_executors(executors, traders.len()).await?;
    }
    let subscribers_label = if executors > 1 {
        format!("{subscribers} / {executors} executors")
    } else {
        subscribers.to_string()
    };
    let db = p.client().await?;
    let keys: Vec<&str> = traders.iter().map(|t| t.api_key.as_str()).collect();
    let mut rows = Vec::new();
    for (round, action) in [(0, "buy"), (1, "sell")] {
        let at = Utc::now();
        let clock = Instant::now();
        let id = p.signal(&token, action, &format!("fan-{round}")).await?;
        let fills = wait_for_fills(
            &db,
            &[id],
            subscribers,
            Duration::from_millis(5),
            Duration::from_secs(120),
        )
        .await?;
        let elapsed = clock.elapsed();
        let at_exchange = p.exchange_times(&keys);
        let to_exchange: Vec<Duration> = fills
            .iter()
            .filter_map(|(link, _)| at_exchange.get(link).map(|c| between(at, *c)))
            .collect();
        let to_fill: Vec<Duration> = fills.iter().map(|(_, f)| between(at, *f)).collect();
        // Where the confirmation time goes: the exchange's own execution time to the start of
        // the transaction that wrote the fill row (push, socket task, queue or pool wait).
        let confirm_stage: Vec<Duration> = db
            .query(
                "SELECT f.exec_time, f.created_at FROM fills f JOIN orders o ON o.id = f.order_id \
                 WHERE o.signal_id = $1",
                &[&id],
            )
            .await?
            .iter()
            .map(|r| between(r.get("exec_time"), r.get("created_at")))
            .collect();
        let label = if round == 0 { " (cold)" } else { "" };
        let mut a = row(
            &format!("fan-out {subscribers_label}{label}: → every order at exch."),
            subscribers,
            to_exchange,
            elapsed,
        );
        let mut b = row(
            &format!("fan-out {subscribers_label}{label}: → every fill recorded"),
            subscribers,
            to_fill,
            elapsed,
        );
        // The rate that matters here: orders per second until the last one.
        a.per_second = a.operations as f64 / (a.max_ms / 1000.0).max(1e-9);
        b.per_second = b.operations as f64 / (b.max_ms / 1000.0).max(1e-9);
        rows.push(a);
        rows.push(b);
        rows.push(row(
            &format!("  stage{label}: exchange fill → fill txn start"),
            subscribers,
            confirm_stage,
            elapsed,
        ));
        // `now()` in a row is its transaction's start; this is when this client saw the last
        // fill committed (polling every 5 ms), an upper bound that includes the commit.
        rows.push(row(
            &format!("  fan-out {subscribers_label}{label}: last fill seen committed"),
            1,
            vec![elapsed],
            elapsed,
        ));
        tokio::time::sleep(Duration::from_millis(300)).await; // past every account's pacing slot
    }
    p.shutdown().await;
    Ok(rows)
}

/// Accounts the backlog's signals rotate over: with 8 orders per second per account, 1,000
/// accounts and 10 signals each keep pacing's bound (about 8,900 signals/s) far above the target.
const BACKLOG_ACCOUNTS: usize = 1_000;

/// `signals` signals stored through the webhook (32 connections) while no executor runs, then
/// `executors` executors start: how long until every signal is done, and every fill recorded.
pub async fn backlog(signals: usize, executors: usize) -> anyhow::Result<Vec<Row>> {
    let mut p = Pipeline::start().await?;
    let traders = p.traders(BACKLOG_ACCOUNTS.min(signals), None).await?;
    let ids = {
        use futures_util::StreamExt;
        let p = &p;
        let traders = &traders;
        futures_util::stream::iter(0..signals)
            .map(|i| async move {
                let t = &traders[i % traders.len()];
                // Storing is not what is measured: a refused request is sent again (same id).
                let mut tries = 0;
                loop {
                    match p.signal(&t.token, "buy", &format!("backlog-{i}")).await {
                        Err(_) if tries < 5 => tries += 1,
                        other => break other,
                    }
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<Vec<uuid::Uuid>>>()?
    };
    let db = p.client().await?;
    let at = Utc::now();
    let clock = Instant::now();
    // The clock includes start-up: instrument rules and opening the 1,000 private streams.
    p.start_executors(executors, 0).await?;
    let settled = db
        .prepare("SELECT count(*) AS n FROM signals WHERE status IN ('done', 'rejected')")
        .await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let n: i64 = db.query_one(&settled, &[]).await?.get("n");
        if n as usize >= signals {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "only {n} of {signals} signals settled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let done: Vec<Duration> = db
        .query("SELECT processed_at FROM signals", &[])
        .await?
        .iter()
        .map(|r| between(at, r.get("processed_at")))
        .collect();
    let fills = wait_for_fills(
        &db,
        &ids,
        signals,
        Duration::from_millis(50),
        Duration::from_secs(120),
    )
    .await?;
    let filled: Vec<Duration> = fills.iter().map(|(_, f)| between(at, *f)).collect();
    let elapsed = clock.elapsed();
    p.shutdown().await;
    let who = if executors > 1 {
        format!("backlog, {executors} executors")
    } else {
        "backlog".to_owned()
    };
    let mut a = row(&format!("{who}: stored signal → done"), 1, done.clone(), elapsed);
    let mut b = row(
        &format!("{who}: stored signal → fill recorded"),
        1,
        filled,
        elapsed,
    );
    a.per_second = a.operations as f64 / (a.max_ms / 1000.0).max(1e-9);
    b.per_second = b.operations as f64 / (b.max_ms / 1000.0).max(1e-9);
    // The rows above include the executor's start-up. This one is the drain once it runs: the
    // rate between the moments 10% and 90% of the signals were done (its p50 column is the first
    // moment, its max the second).
    let mut sorted = done.clone();
    sorted.sort_unstable();
    let at = |q: f64| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize];
    let (t10, t90) = (at(0.1), at(0.9));
    let mut steady = row(
        &format!("{who}: steady drain, 10% → 90% done"),
        1,
        vec![t10, t90],
        elapsed,
    );
    steady.per_second = 0.8 * signals as f64 / (t90 - t10).as_secs_f64().max(1e-9);
    steady.p50_ms = t10.as_secs_f64() * 1000.0;
    steady.p90_ms = t90.as_secs_f64() * 1000.0;
    steady.p99_ms = steady.p90_ms;
    steady.max_ms = steady.p90_ms;
    Ok(vec![a, b, steady])
}

/// This process's soft limit on open files (`/proc/self/limits`), if it can be read.
fn open_files_limit() -> Option<u64> {
    std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}
