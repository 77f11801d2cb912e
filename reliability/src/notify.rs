//! The notification scenario: traders' fills notify each trader's JSON webhook (a receiver in this
//! process, answering after a random pause so kills land mid-send) while the executor, which runs
//! the sender, is killed with SIGKILL and restarted. Judged on the receiver's record: every fill's
//! notification arrives (none lost) and is marked delivered; a notification is received again only
//! inside the at-least-once window of a kill (docs/notifications.md#delivery-at-least-once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cluster::{ADMIN, Cluster};
use crate::scenarios::Scale;
use crate::traffic::{self, SignalStream, Verdict};

/// How many times each `webhook-id` arrived.
type Receipts = Arc<Mutex<HashMap<String, usize>>>;

/// A minimal HTTP/1.1 receiver: reads one request per connection, records its `webhook-id`,
/// answers 200 after 0 to 200 ms.
async fn receiver() -> anyhow::Result<(String, Receipts)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let receipts: Receipts = Arc::default();
    let seen = receipts.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then as much body as Content-Length says.
                let (head_end, length) = loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while buf.len() < head_end + length {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                if let Some(id) = head.lines().find_map(|l| l.strip_prefix("webhook-id:")) {
                    *seen.lock().unwrap().entry(id.trim().to_owned()).or_default() += 1;
                }
                tokio::time::sleep(Duration::from_millis(
                    (uuid::Uuid::new_v4().as_u128() % 200) as u64,
                ))
                .await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    Ok((url, receipts))
}

/// kill -9 of the executor (and so of the notification sender) while fills are being notified.
pub async fn sender_killed(cluster: &mut Cluster, scale: Scale) -> anyhow::Result<Verdict> {
    let traders = traffic::traders(cluster, 3).await?;
    let (url, receipts) = receiver().await?;
    let db = cluster.db().await?;
    let http = reqwest::Client::new();
    for row in db.query("SELECT id FROM users", &[]).await? {
        let id: uuid::Uuid = row.get("id");
        let resp = http
            .put(format!("{}/admin/users/{id}/notifications", cluster.ingest_url()))
            .bearer_auth(ADMIN)
            .json(&json!({ "webhook_url": url, "events": ["order_filled"] }))
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "notifications: {}", resp.status());
    }
    let kills = if scale.quick { 4 } else { 15 };
    let mut current = cluster.start_executor(None)?;
    let stream = SignalStream::start(cluster, &traders.strategy_token, 5);
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(
            300 + (uuid::Uuid::new_v4().as_u128() % 700) as u64,
        ))
        .await;
        cluster.kill_executor(current).await;
        current = cluster.start_executor(None)?;
    }
    let sent = stream.finish().await;
    let mut verdict = traffic::witness(
        cluster,
        &traders,
        &sent,
        "notification sender killed mid-send",
        String::new(),
        Duration::from_secs(90),
    )
    .await?;

    // Every fill's notification delivered (leases of a killed sender expire in 20 s).
    let started = Instant::now();
    let (notifications, undelivered) = loop {
        let row = db
            .query_one(
                "SELECT (SELECT count(*) FROM notifications WHERE event = 'order_filled') AS made, \
                        (SELECT count(*) FROM notifications n WHERE event = 'order_filled' AND NOT EXISTS ( \
                            SELECT 1 FROM notification_deliveries d \
                            WHERE d.notification_id = n.id AND d.status = 'delivered')) AS open",
                &[],
            )
            .await?;
        let (made, open): (i64, i64) = (row.get("made"), row.get("open"));
        if open == 0 || started.elapsed() > Duration::from_secs(90) {
            break (made as usize, open as usize);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ids: Vec<String> = db
        .query(
            "SELECT id::text AS id FROM notifications WHERE event = 'order_filled'",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get("id"))
        .collect();
    let receipts = receipts.lock().unwrap().clone();
    let never_received = ids.iter().filter(|id| !receipts.contains_key(*id)).count();
    let repeats: usize = receipts.values().map(|n| n - 1).sum();
    // A kill can cut at most one in-flight POST per destination (one per trader): more repeats
    // than that would be resends of delivered notifications.
    let window = kills * traders.api_keys.len();
    verdict.lost += undelivered.max(never_received);
    verdict.duplicates += repeats.saturating_sub(window);
    verdict.settle_secs += started.elapsed().as_secs_f64();
    verdict.note = format!(
        "{kills} kills; {notifications} fill notifications, {undelivered} undelivered, {never_received} never received, \
         {repeats} received twice (at-least-once window: at most {window})"
    );
    if notifications == 0 {
        verdict.lost = verdict.lost.max(1);
        verdict.note.push_str("; NO notification was made");
    }
    Ok(verdict)
}
