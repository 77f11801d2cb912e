//! Traffic and the witness: traders following one strategy, a stream of distinct signed signals
//! fanned out to all of them, and the count of what the paper exchange really holds.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use humbex_ingest::webhook::signature::sign_x_signature;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::cluster::{ADMIN, Cluster, SECRET};

pub struct Traders {
    pub strategy_token: String,
    /// (api_key) per trader.
    pub api_keys: Vec<String>,
}

async fn admin(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let resp = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await?;
    let status = resp.status();
    let value: Value = resp.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{path}: {status} {value}");
    Ok(value)
}

/// `n` traders with active subscriptions to one strategy, each with a key on the paper exchange.
pub async fn traders(cluster: &Cluster, n: usize) -> anyhow::Result<Traders> {
    let http = reqwest::Client::new();
    let base = cluster.ingest_url();
    let strategy = admin(
        &http,
        &base,
        reqwest::Method::POST,
        "/admin/strategies",
        json!({ "name": format!("s-{}", uuid::Uuid::new_v4()) }),
    )
    .await?;
    let sid = strategy["id"].as_str().unwrap_or_default().to_owned();
    let mut api_keys = Vec::new();
    for i in 0..n {
        let user = admin(
            &http,
            &base,
            reqwest::Method::POST,
            "/admin/users",
            json!({ "email": format!("t{i}-{}@rel.example", uuid::Uuid::new_v4().simple()) }),
        )
        .await?;
        let id = user["id"].as_str().unwrap_or_default().to_owned();
        admin(
            &http,
            &base,
            reqwest::Method::PUT,
            &format!("/admin/users/{id}/subscription"),
            json!({ "status": "active", "strategy_id": sid }),
        )
        .await?;
        let key = format!("REL{}", &uuid::Uuid::new_v4().simple().to_string()[..15]);
        let secret = format!("SEC{}", uuid::Uuid::new_v4().simple());
        // In paper mode ingest creates the account on the paper exchange before checking the key.
        admin(
            &http,
            &base,
            reqwest::Method::POST,
            &format!("/admin/users/{id}/api-keys"),
            json!({ "api_key": key, "api_secret": secret }),
        )
        .await?;
        api_keys.push(key);
    }
    Ok(Traders {
        strategy_token: strategy["webhook_token"].as_str().unwrap_or_default().to_owned(),
        api_keys,
    })
}

/// What the webhook answered over a run.
#[derive(Default)]
pub struct Sent {
    /// Signals ingest accepted (202), by id.
    pub accepted: Vec<String>,
    pub unavailable_503: u64,
    pub other_errors: u64,
    /// Requests answered only on their one retry (after a 503 or a refused connection).
    pub retried: u64,
}

/// Sends distinct signals at about `per_second` until stopped.
pub struct SignalStream {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    sent: Arc<Mutex<Sent>>,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// One signed signal; buys and sells alternate so positions stay small.
pub async fn send_signal(
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> Result<(u16, Value), reqwest::Error> {
    post_signal(http, base, next_body(token)).await
}

/// The body of the next distinct signal.
fn next_body(token: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let action = if n.is_multiple_of(2) { "buy" } else { "sell" };
    json!({
        "token": token, "action": action, "symbol": "AVAXUSDT", "quantity": "1",
        "id": format!("rel-{}-{n}", std::process::id()),
    })
    .to_string()
}

/// POST one signed body to one ingest.
async fn post_signal(
    http: &reqwest::Client,
    base: &str,
    body: String,
) -> Result<(u16, Value), reqwest::Error> {
    let resp = http
        .post(format!("{base}/webhook"))
        .header("content-type", "application/json")
        .header(
            "x-signature",
            sign_x_signature(SECRET.as_bytes(), body.as_bytes()),
        )
        .timeout(Duration::from_secs(5))
        .body(body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let value = resp.json().await.unwrap_or(Value::Null);
    Ok((status, value))
}

impl SignalStream {
    pub fn start(cluster: &Cluster, token: &str, per_second: u32) -> SignalStream {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(Mutex::new(Sent::default()));
        let (base, token, stop2, sent2) =
            (cluster.ingest_url(), token.to_owned(), stop.clone(), sent.clone());
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut every = tokio::time::interval(Duration::from_secs(1) / per_second.max(1));
            while !stop2.load(Ordering::Relaxed) {
                every.tick().await;
                let outcome = send_signal(&http, &base, &token).await;
                let mut sent = sent2.lock().await;
                match outcome {
                    Ok((202, v)) => sent
                        .accepted
                        .push(v["signal_id"].as_str().unwrap_or_default().to_owned()),
                    Ok((503, _)) => sent.unavailable_503 += 1,
                    _ => sent.other_errors += 1,
                }
            }
        });
        SignalStream { stop, task, sent }
    }

    /// Like [`SignalStream::start`], over several ingests in turn (a load balancer), each request
    /// retried once, on the next ingest, after a 503 or a refused connection (as TradingView
    /// retries). A duplicate answer (200) to a retry counts the original signal once.
    pub fn start_balanced(urls: Vec<String>, token: &str, per_second: u32) -> SignalStream {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(Mutex::new(Sent::default()));
        let (token, stop2, sent2) = (token.to_owned(), stop.clone(), sent.clone());
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut every = tokio::time::interval(Duration::from_secs(1) / per_second.max(1));
            let mut turn = 0usize;
            while !stop2.load(Ordering::Relaxed) {
                every.tick().await;
                let body = next_body(&token);
                turn += 1;
                let mut outcome = post_signal(&http, &urls[turn % urls.len()], body.clone()).await;
                let retry = match &outcome {
                    Ok((503, _)) => true,
                    Err(e) => e.is_connect(),
                    _ => false,
                };
                if retry {
                    outcome = post_signal(&http, &urls[(turn + 1) % urls.len()], body).await;
                }
                let mut sent = sent2.lock().await;
                match outcome {
                    Ok((202 | 200, v)) => {
                        let id = v["signal_id"].as_str().unwrap_or_default().to_owned();
                        if !sent.accepted.contains(&id) {
                            sent.accepted.push(id);
                        }
                        sent.retried += u64::from(retry);
                    }
                    Ok((503, _)) => sent.unavailable_503 += 1,
                    _ => sent.other_errors += 1,
                }
            }
        });
        SignalStream { stop, task, sent }
    }

    pub async fn finish(self) -> Sent {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        std::mem::take(&mut *self.sent.lock().await)
    }
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub scenario: String,
    pub signals: usize,
    pub expected: usize,
    pub at_exchange: usize,
    pub duplicates: usize,
    pub lost: usize,
    pub unconfirmed: usize,
    pub settle_secs: f64,
    pub note: String,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.duplicates == 0 && self.lost == 0 && self.unconfirmed == 0
    }
}

/// Wait until every accepted signal is settled and every order is confirmed (or `limit`), then
/// count against the paper exchange's own record of orders.
pub async fn witness(
    cluster: &Cluster,
    traders: &Traders,
    sent: &Sent,
    scenario: &str,
    note: String,
    limit: Duration,
) -> anyhow::Result<Verdict> {
    let started = Instant::now();
    let db = cluster.db().await?;
    let ids: Vec<uuid::Uuid> = sent.accepted.iter().filter_map(|s| s.parse().ok()).collect();
    let still_open = loop {
        let row = db
            .query_one(
                "SELECT \
                   (SELECT count(*) FROM signals WHERE id = ANY($1) AND status IN ('received','processing')) AS open_signals, \
                   (SELECT count(*) FROM orders o WHERE o.signal_id = ANY($1) AND (o.status IN ('pending','submitted','new','partially_filled') \
                      OR (o.status = 'filled' AND o.filled_qty <> COALESCE((SELECT sum(f.qty) FROM fills f WHERE f.order_id = o.id), 0)))) AS open_orders",
                &[&ids],
            )
            .await?;
        let (open_signals, open_orders): (i64, i64) = (row.get("open_signals"), row.get("open_orders"));
        let open = (open_signals + open_orders) as usize;
        if open == 0 || started.elapsed() > limit {
            break open;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let settle_secs = started.elapsed().as_secs_f64();

    // Our rows: order_link_id → (signal, user, status).
    let rows = db
        .query(
            // A row counts as confirmed only when it is filled and its fill rows add up.
            "SELECT order_link_id, signal_id, user_id, \
                    CASE WHEN status = 'filled' AND filled_qty <> COALESCE( \
                             (SELECT sum(f.qty) FROM fills f WHERE f.order_id = orders.id), 0) \
                         THEN 'filled-without-fills' ELSE status END AS state \
             FROM orders WHERE signal_id = ANY($1)",
            &[&ids],
        )
        .await?;
    let ours: HashMap<String, (uuid::Uuid, uuid::Uuid, String)> = rows
        .iter()
        .map(|r| {
            (
                r.get("order_link_id"),
                (r.get("signal_id"), r.get("user_id"), r.get("state")),
            )
        })
        .collect();
    let http = reqwest::Client::new();
    let mut at_exchange = 0;
    let mut pairs = HashSet::new();
    let mut duplicates = 0;
    let mut unconfirmed = 0;
    for key in &traders.api_keys {
        let orders: Value = http
            .get(format!("{}/paper/accounts/{key}/orders", cluster.paper_url()))
            .send()
            .await?
            .json()
            .await?;
        for order in orders.as_array().cloned().unwrap_or_default() {
            let link = order["order_link_id"].as_str().unwrap_or_default();
            match ours.get(link) {
                Some((signal, user, status)) => {
                    at_exchange += 1;
                    if !pairs.insert((*signal, *user)) {
                        duplicates += 1;
                    }
                    if status != "filled" {
                        unconfirmed += 1;
                    }
                }
                // An order we have no row for is one the pipeline should never have sent.
                None if link.starts_with("hbx-") => {
                    at_exchange += 1;
                    duplicates += 1;
                }
                None => {}
            }
        }
    }
    let expected = ids.len() * traders.api_keys.len();
    // Anything still open at the limit is unconfirmed, whatever the exchange holds.
    let note = if still_open > 0 {
        format!(
            "{note}; {still_open} signals/orders still open after {:.0} s",
            limit.as_secs_f64()
        )
    } else {
        note
    };
    Ok(Verdict {
        scenario: scenario.to_owned(),
        signals: ids.len(),
        expected,
        at_exchange,
        duplicates,
        lost: expected.saturating_sub(pairs.len()),
        unconfirmed: unconfirmed + still_open,
        settle_secs,
        note,
    })
}
