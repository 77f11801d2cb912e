//! `console-feed`: the console's live feed (`GET /console/events`) while signals arrive at
//! `--feed-rate` a second (1,000) for `--seconds` (10) through `POST /webhook`, with `--feed-readers`
//! (8) signed-in browsers reading the stream and one more that never reads a byte. Reports the
//! events each reader got per second, the signals accepted, the readers ingest dropped, and the
//! process's resident memory before and after. Ingest runs in this process on its own runtime
//! (threads named `ingest`), so the RSS rows are the whole bench process: ingest, the sender and
//! the readers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use humbex_ingest::webhook::signature::sign_x_signature;
use humbex_shared::db::TestDatabase;
use tokio::io::AsyncWriteExt;

use crate::pipeline::{ADMIN, SECRET};
use crate::report::{Row, row};

/// Webhooks in flight at most: the sender is paced, this only bounds a stall.
const IN_FLIGHT: usize = 256;
/// How long the readers may take to catch up after the last signal.
const CATCH_UP: Duration = Duration::from_secs(15);

/// Resident memory of this process now (VmRSS), in MiB.
fn rss_now() -> f64 {
    crate::resources::process_memory("self", "VmRSS:")
}

fn figure_row(what: &str, operations: usize, per_second: f64) -> Row {
    let mut r = row(what, 1, Vec::new(), Duration::from_secs(1));
    r.operations = operations;
    r.per_second = per_second;
    r
}

pub async fn run(readers: usize, rate: u32, window: Duration) -> anyhow::Result<Vec<Row>> {
    let db = TestDatabase::create().await?;
    let ingest = crate::ingest_load::InProcessIngest::start(&db).await?;
    let (addr, state) = (ingest.addr, ingest.state.clone());
    let hub = state.console_events.clone();
    let base = format!("http://{addr}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(IN_FLIGHT)
        .build()?;
    let token = active_user(&http, &base, "feed@bench.local").await?;
    let cookie = crate::console::sign_in(&base).await?;
    wait_for_listen(&db).await?;

    let rss_before = rss_now();
    let counts: Vec<Arc<AtomicU64>> = (0..readers).map(|_| Arc::default()).collect();
    for count in &counts {
        let resp = http
            .get(format!("{base}/console/events"))
            .header("cookie", &cookie)
            .send()
            .await?;
        anyhow::ensure!(resp.status() == 200, "events answered {}", resp.status());
        let count = count.clone();
        tokio::spawn(async move {
            let mut resp = resp;
            const EVENT: &[u8] = b"event: signal\n";
            // A chunk may end inside an event's first line: the last bytes carry over.
            let mut data = Vec::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                data.extend_from_slice(&chunk);
                let n = data.windows(EVENT.len()).filter(|w| *w == EVENT).count();
                count.fetch_add(n as u64, Ordering::Relaxed);
                data.drain(..data.len().saturating_sub(EVENT.len() - 1));
            }
        });
    }
    // The browser that never reads: a connection with a small receive buffer, its request sent.
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    let mut stuck = socket.connect(addr).await?;
    stuck
        .write_all(
            format!("GET /console/events HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\r\n").as_bytes(),
        )
        .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    // Every stream counted, and the channels listened to (the console listens only while a browser
    // watches): from here on no event is missed.
    while hub.watchers() < readers as u64 + 1 || !hub.listening() {
        anyhow::ensure!(Instant::now() < deadline, "the event streams did not open");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let (accepted, elapsed, warm_rss) = send_paced(&http, &base, &token, rate, window).await;
    let sent_rss = rss_now();
    // Let the readers catch up with what was accepted, then read the counts.
    let deadline = Instant::now() + CATCH_UP;
    while counts.iter().any(|c| c.load(Ordering::Relaxed) < accepted) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss_after = rss_now();

    let mut rows = vec![figure_row(
        "console-feed: signals accepted (POST /webhook → 202)",
        accepted as usize,
        accepted as f64 / elapsed.as_secs_f64(),
    )];
    for (i, count) in counts.iter().enumerate() {
        let n = count.load(Ordering::Relaxed);
        rows.push(figure_row(
            &format!("console-feed: reader {} events", i + 1),
            n as usize,
            n as f64 / elapsed.as_secs_f64(),
        ));
    }
    rows.push(figure_row(
        "console-feed: readers dropped (of which 1 never reads)",
        hub.dropped_slow() as usize,
        0.0,
    ));
    for (what, mib) in [
        ("console-feed: process RSS before", rss_before),
        ("console-feed: process RSS after 1 s of signals", warm_rss),
        ("console-feed: process RSS at the last signal", sent_rss),
        ("console-feed: process RSS after catch-up", rss_after),
    ] {
        let mut r = figure_row(what, 0, 0.0);
        r.rss_mib = Some(mib);
        rows.push(r);
    }
    drop(stuck);
    ingest.stop();
    drop(db);
    Ok(rows)
}

/// A user with an active subscription, made through the admin API; its webhook token.
pub async fn active_user(http: &reqwest::Client, base: &str, email: &str) -> anyhow::Result<String> {
    let created: serde_json::Value = http
        .post(format!("{base}/admin/users"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({ "email": email }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let user = created["id"].as_str().unwrap_or_default();
    http.put(format!("{base}/admin/users/{user}/subscription"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({ "status": "active" }))
        .send()
        .await?
        .error_for_status()?;
    Ok(created["webhook_token"].as_str().unwrap_or_default().to_owned())
}

/// Wait until the console's LISTEN connection has run LISTEN (before that, no event is heard).
async fn wait_for_listen(db: &TestDatabase) -> anyhow::Result<()> {
    let client = humbex_shared::db::connect(&db.url.pg_config()).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND application_name = $1 AND query LIKE 'LISTEN%'",
                &[&humbex_ingest::console::events::LISTEN_APPLICATION_NAME],
            )
            .await?
            .get(0);
        if n > 0 {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "the console's LISTEN did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `rate` signed signals a second for `window`, sent every 10 ms in slices; the answer is how many
/// got 202, how long sending took, and the process's RSS after the first second (warmed up: the
/// connection pools full).
async fn send_paced(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    rate: u32,
    window: Duration,
) -> (u64, Duration, f64) {
    let mut warm_rss = 0.0;
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let accepted = Arc::new(AtomicU64::new(0));
    let per_tick = (rate as u64).div_ceil(100);
    let ticks = (window.as_secs_f64() * 100.0) as u64;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..ticks {
        tick.tick().await;
        if t == 100 {
            warm_rss = rss_now();
        }
        for i in 0..per_tick {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let (http, accepted) = (http.clone(), accepted.clone());
            let url = format!("{base}/webhook");
            let body = format!(
                r#"{{"token":"{token}","action":"buy","symbol":"AVAXUSDT","quantity":"1","id":"feed-{t}-{i}"}}"#
            );
            tasks.spawn(async move {
                let sig = sign_x_signature(SECRET.as_bytes(), body.as_bytes());
                let resp = http
                    .post(url)
                    .header("content-type", "application/json")
                    .header("x-signature", sig)
                    .body(body)
                    .send()
                    .await;
                if resp.is_ok_and(|r| r.status().as_u16() == 202) {
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
                drop(slot);
            });
        }
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    (accepted.load(Ordering::Relaxed), started.elapsed(), warm_rss)
}
