//! The scenarios: each runs on a fresh cluster with signals flowing throughout, injects its
//! faults, and is judged by the witness: no duplicate, nothing lost, nothing left unconfirmed.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cluster::{Cluster, POLL_INTERVAL_SECS};
use crate::traffic::{self, SignalStream, Verdict};

const SETTLE_LIMIT: Duration = Duration::from_secs(90);
const TRADERS: usize = 3;
const SIGNALS_PER_SECOND: u32 = 5;

/// How hard to push: CI runs `quick`, the documented full run does not.
#[derive(Clone, Copy)]
pub struct Scale {
    pub kill_trials: usize,
    pub quick: bool,
}

fn jitter(max_ms: u64) -> Duration {
    Duration::from_millis(50 + (uuid::Uuid::new_v4().as_u128() % max_ms as u128) as u64)
}

async fn fault(cluster: &Cluster, body: serde_json::Value) -> anyhow::Result<()> {
    let resp = reqwest::Client::new()
        .post(format!("{}/paper/faults", cluster.paper_url()))
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "fault {body}: {}", resp.status());
    Ok(())
}

/// kill -9 of the executor at random moments, restarted each time.
pub async fn kill_random(cluster: &mut Cluster, scale: Scale) -> anyhow::Result<Verdict> {
    let traders = traffic::traders(cluster, TRADERS).await?;
    let mut current = cluster.start_executor(None)?;
    let stream = SignalStream::start(cluster, &traders.strategy_token, SIGNALS_PER_SECOND);
    for _ in 0..scale.kill_trials {
        tokio::time::sleep(jitter(400)).await;
        cluster.kill_executor(current).await;
        current = cluster.start_executor(None)?;
    }
    let sent = stream.finish().await;
    traffic::witness(
        cluster,
        &traders,
        &sent,
        "kill -9 at random moments",
        format!("{} kills", scale.kill_trials),
        SETTLE_LIMIT,
    )
    .await
}

/// Crashes at each named failpoint, and during an order create the exchange has received but not
/// yet answered.
pub async fn failpoints(cluster: &mut Cluster, _scale: Scale) -> anyhow::Result<Verdict> {
    let traders = traffic::traders(cluster, TRADERS).await?;
    let stream = SignalStream::start(cluster, &traders.strategy_token, SIGNALS_PER_SECOND);
    let mut crashed = Vec::new();
    for point in ["after_claim", "before_post", "after_answer"] {
        let armed = cluster.start_executor(Some(point))?;
        let died = cluster.wait_executor_exit(armed, Duration::from_secs(15)).await;
        crashed.push(format!(
            "{point}:{}",
            if died { "crashed" } else { "not reached" }
        ));
        cluster.kill_executor(armed).await;
    }
    // The exchange places the order, then holds its answer; the executor dies while waiting.
    let healthy = cluster.start_executor(None)?;
    fault(
        cluster,
        json!({ "kind": "order_create_timeout", "count": 1, "hold_ms": 3000, "after_placing": true }),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.kill_executor(healthy).await;
    crashed.push("in-flight POST:killed".into());
    cluster.start_executor(None)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = stream.finish().await;
    traffic::witness(
        cluster,
        &traders,
        &sent,
        "crash at named failpoints",
        crashed.join(" "),
        SETTLE_LIMIT,
    )
    .await
}

/// The executor's LISTEN connection alone is terminated; it must notice, reconnect and catch up.
pub async fn listen_terminated(cluster: &mut Cluster, _scale: Scale) -> anyhow::Result<Verdict> {
    let traders = traffic::traders(cluster, TRADERS).await?;
    cluster.start_executor(None)?;
    let db = cluster.db().await?;
    let stream = SignalStream::start(cluster, &traders.strategy_token, SIGNALS_PER_SECOND);
    let mut terminated = 0;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let row = db
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = 'humbex-executor-listen'",
                &[],
            )
            .await?;
        terminated += row.get::<_, i64>(0);
    }
    // Right after a termination: a signal must still be placed within about one poll interval.
    db.query_one(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'humbex-executor-listen'",
        &[],
    )
    .await?;
    let http = reqwest::Client::new();
    let probe_sent = Instant::now();
    let (_, answer) = traffic::send_signal(&http, &cluster.ingest_url(), &traders.strategy_token).await?;
    let probe: uuid::Uuid = answer["signal_id"].as_str().unwrap_or_default().parse()?;
    let mut caught_up = None;
    while probe_sent.elapsed() < Duration::from_secs(10) {
        let n: i64 = db
            .query_one(
                "SELECT count(*) AS n FROM orders WHERE signal_id = $1 AND status <> 'pending'",
                &[&probe],
            )
            .await?
            .get("n");
        if n as usize == traders.api_keys.len() {
            caught_up = Some(probe_sent.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut sent = stream.finish().await;
    sent.accepted.push(probe.to_string());
    let note = format!(
        "{terminated} LISTEN connections terminated; caught up in {} (poll interval {POLL_INTERVAL_SECS} s)",
        caught_up
            .map(|d| format!("{:.0} ms", d.as_secs_f64() * 1000.0))
            .unwrap_or_else(|| "NEVER".into())
    );
    let mut verdict = traffic::witness(
        cluster,
        &traders,
        &sent,
        "LISTEN connection terminated",
        note,
        SETTLE_LIMIT,
    )
    .await?;
    if caught_up.is_none_or(|d| d > Duration::from_secs_f64(POLL_INTERVAL_SECS + 1.0)) {
        verdict.lost = verdict.lost.max(1);
    }
    Ok(verdict)
}

/// PostgreSQL restarted under load: ingest answers 503 while it cannot store (never a 2xx for an
/// unstored signal), and the executor's LISTEN connection and pool recover on their own.
pub async fn postgres_restart(cluster: &mut Cluster, scale: Scale) -> anyhow::Result<Verdict> {
    let traders = traffic::traders(cluster, TRADERS).await?;
    cluster.start_executor(None)?;
    let stream = SignalStream::start(cluster, &traders.strategy_token, SIGNALS_PER_SECOND);
    let restarts = if scale.quick { 1 } else { 3 };
    for _ in 0..restarts {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        cluster.pg.restart()?;
    }
    // Backends terminated too, not only whole restarts.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let db = cluster.db().await?;
    db.query_one(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = 'humbex' AND pid <> pg_backend_pid()",
        &[],
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent = stream.finish().await;
    // Every 2xx must name a stored signal.
    let ids: Vec<uuid::Uuid> = sent.accepted.iter().filter_map(|s| s.parse().ok()).collect();
    let stored: i64 = cluster
        .db()
        .await?
        .query_one("SELECT count(*) AS n FROM signals WHERE id = ANY($1)", &[&ids])
        .await?
        .get("n");
    let note = format!(
        "{restarts} restart(s) + backends terminated; {} answered 503; {} of {} accepted signals stored",
        sent.unavailable_503,
        stored,
        ids.len()
    );
    let mut verdict = traffic::witness(
        cluster,
        &traders,
        &sent,
        "PostgreSQL restarted under load",
        note,
        SETTLE_LIMIT,
    )
    .await?;
    verdict.lost += ids.len() - stored as usize;
    Ok(verdict)
}

/// Three executors on one database, killed and restarted among themselves.
pub async fn many_executors(cluster: &mut Cluster, scale: Scale) -> anyhow::Result<Verdict> {
    let traders = traffic::traders(cluster, TRADERS).await?;
    let mut running: Vec<usize> = (0..3)
        .map(|_| cluster.start_executor(None))
        .collect::<Result<_, _>>()?;
    let stream = SignalStream::start(cluster, &traders.strategy_token, SIGNALS_PER_SECOND);
    let kills = (scale.kill_trials / 2).max(3);
    for k in 0..kills {
        tokio::time::sleep(jitter(600)).await;
        let victim = running.remove(k % running.len());
        cluster.kill_executor(victim).await;
        running.push(cluster.start_executor(None)?);
    }
    let sent = stream.finish().await;
    traffic::witness(
        cluster,
        &traders,
        &sent,
        "three executors, kills among them",
        format!("{kills} kills"),
        SETTLE_LIMIT,
    )
    .await
}

/// Rolling restart: three executors and two ingests (behind a load balancer that retries a request
/// once, as TradingView does) each stopped with SIGTERM and started again, one by one, while
/// signals flow. Nothing lost or doubled, and no request fails after its one retry (those count
/// as lost).
pub async fn rolling_restart(cluster: &mut Cluster, scale: Scale) -> anyhow::Result<Verdict> {
    let traders = traffic::traders(cluster, TRADERS).await?;
    cluster.start_ingest_replica().await?;
    let mut running: Vec<usize> = (0..3)
        .map(|_| cluster.start_executor(None))
        .collect::<Result<_, _>>()?;
    live_executors(cluster, 3, running[2]).await?;
    let stream = SignalStream::start_balanced(
        cluster.ingest_urls(),
        &traders.strategy_token,
        SIGNALS_PER_SECOND * 4,
    );
    let rounds = if scale.quick { 1 } else { 3 };
    let mut failed_starts = 0;
    for _ in 0..rounds {
        for slot in running.iter_mut() {
            tokio::time::sleep(jitter(800)).await;
            cluster.terminate_executor(*slot).await?;
            // As a supervisor (systemd, compose) would: a replacement that exits at start-up (it
            // could not reach PostgreSQL in time on a loaded machine) is started again.
            let mut starts = 0;
            loop {
                *slot = cluster.start_executor(None)?;
                starts += 1;
                match live_executors(cluster, 3, *slot).await {
                    Ok(()) => break,
                    Err(e) if starts < 3 => {
                        eprintln!("  a replacement executor did not join ({e:#}); starting it again");
                        cluster.kill_executor(*slot).await;
                        failed_starts += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        for ingest in 0..cluster.ingest_urls().len() {
            tokio::time::sleep(jitter(800)).await;
            cluster.restart_ingest(ingest).await?;
        }
    }
    let sent = stream.finish().await;
    let failed = sent.unavailable_503 + sent.other_errors;
    let requests = sent.accepted.len() as u64 + failed;
    let mut verdict = traffic::witness(
        cluster,
        &traders,
        &sent,
        "rolling restart of 3 executors and 2 ingests",
        format!(
            "{rounds} rounds, each process stopped with SIGTERM and started again one by one; \
             {} of {requests} webhooks answered on their one retry, {failed} failed after it; \
             {failed_starts} replacement executors exited at start-up and were started again",
            sent.retried
        ),
        SETTLE_LIMIT,
    )
    .await?;
    verdict.lost += failed as usize;
    Ok(verdict)
}

/// Wait until `n` executors are live in the fleet (the one just started, `newest`, has joined);
/// an error if it exits first or none joins in time.
async fn live_executors(cluster: &mut Cluster, n: i64, newest: usize) -> anyhow::Result<()> {
    let db = cluster.db().await?;
    // A debug build on a loaded machine takes seconds to start.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let live: i64 = db
            .query_one(
                "SELECT count(*) AS n FROM executors WHERE alive_until > now()",
                &[],
            )
            .await?
            .get("n");
        if live == n {
            return Ok(());
        }
        anyhow::ensure!(
            !cluster.wait_executor_exit(newest, Duration::ZERO).await,
            "executor {newest} exited before it joined"
        );
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{live} executors live after 60 s, wanted {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Exchange faults from the paper exchange's control API while signals flow.
pub async fn exchange_faults(cluster: &mut Cluster, _scale: Scale) -> anyhow::Result<Verdict> {
    let traders = traffic::traders(cluster, TRADERS).await?;
    cluster.start_executor(None)?;
    let stream = SignalStream::start(cluster, &traders.strategy_token, SIGNALS_PER_SECOND);
    let faults = [
        json!({ "kind": "order_create_http_error", "count": 3, "status": 502, "after_placing": true }),
        json!({ "kind": "order_create_timeout", "count": 2, "hold_ms": 2500, "after_placing": true }),
        json!({ "kind": "rate_limit_burst", "count": 6 }),
        json!({ "kind": "drop_ws_connections" }),
        json!({ "kind": "withhold_pushes", "count": 5 }),
    ];
    for f in &faults {
        tokio::time::sleep(Duration::from_millis(700)).await;
        fault(cluster, f.clone()).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = stream.finish().await;
    let _ = reqwest::Client::new()
        .delete(format!("{}/paper/faults", cluster.paper_url()))
        .send()
        .await;
    traffic::witness(
        cluster,
        &traders,
        &sent,
        "exchange faults (5xx, timeouts, 10006, WS drops, withheld pushes)",
        "5 fault kinds".into(),
        SETTLE_LIMIT,
    )
    .await
}

/// Ingest: 20 identical concurrent webhooks, and one TradingView alert delivered 4 times.
pub async fn ingest_duplicates(cluster: &mut Cluster, _scale: Scale) -> anyhow::Result<Verdict> {
    let traders = traffic::traders(cluster, TRADERS).await?;
    cluster.start_executor(None)?;
    let http = reqwest::Client::new();
    let base = cluster.ingest_url();
    let body = json!({ "token": traders.strategy_token, "action": "buy", "symbol": "AVAXUSDT", "quantity": "1", "id": "twenty-copies" }).to_string();
    let sig = humbex_ingest::webhook::signature::sign_x_signature(
        crate::cluster::SECRET.as_bytes(),
        body.as_bytes(),
    );
    let copies = (0..20).map(|_| {
        http.post(format!("{base}/webhook"))
            .header("content-type", "application/json")
            .header("x-signature", sig.clone())
            .body(body.clone())
            .send()
    });
    let mut accepted = Vec::new();
    let mut duplicates_answered = 0;
    for resp in futures_util::future::join_all(copies).await {
        tally(resp?, &mut accepted, &mut duplicates_answered).await?;
    }
    // TradingView resends a byte-identical body (no id): the body hash makes them one signal.
    let tv = format!(
        r#"{{"token":"{}","action":"sell","symbol":"BYBIT:AVAXUSDT.P","quantity":"1","timestamp":"{}"}}"#,
        traders.strategy_token,
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    );
    for _ in 0..4 {
        let resp = http
            .post(format!("{base}/webhook/tradingview"))
            .header("content-type", "text/plain")
            .body(tv.clone())
            .send()
            .await?;
        tally(resp, &mut accepted, &mut duplicates_answered).await?;
    }
    let sent = traffic::Sent {
        accepted,
        ..Default::default()
    };
    let note = format!(
        "24 requests → {} signals stored, {duplicates_answered} answered as duplicates",
        sent.accepted.len()
    );
    let mut verdict = traffic::witness(
        cluster,
        &traders,
        &sent,
        "ingest: 20 identical + TradingView ×4",
        note,
        SETTLE_LIMIT,
    )
    .await?;
    // Exactly two signals may exist: one per distinct alert.
    verdict.duplicates += sent.accepted.len().saturating_sub(2);
    Ok(verdict)
}

/// Sort one webhook answer: a new signal (202, its id kept) or a duplicate (200); anything else fails.
async fn tally(
    resp: reqwest::Response,
    accepted: &mut Vec<String>,
    duplicates: &mut u32,
) -> anyhow::Result<()> {
    let status = resp.status().as_u16();
    let answer: serde_json::Value = resp.json().await?;
    match status {
        202 => accepted.push(answer["signal_id"].as_str().unwrap_or_default().to_owned()),
        200 => *duplicates += 1,
        other => anyhow::bail!("unexpected {other}"),
    }
    Ok(())
}
