//! Order-create throughput and latency of the paper exchange on loopback (prints numbers; not a test).
//!
//! cargo run --release --example bench -- [--url http://127.0.0.1:8001] [--seconds 5] [--concurrency 16] [--with-ws]
//!
//! --with-ws keeps an authenticated private WebSocket subscribed to every topic, so each create also
//! builds and sends its five pushes (as in paper mode); without it nobody listens and no pushes are built.
//!
//! Without --url it starts a paper exchange in this process on a free port (sharing the machine's cores
//! with the load generator, as a test or `humbex up` would).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use humbex_paper_exchange::signing::sign_rest;
use humbex_paper_exchange::{PaperExchangeConfig, spawn};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

struct Options {
    url: Option<String>,
    seconds: u64,
    concurrency: usize,
    with_ws: bool,
}

fn options() -> Options {
    let mut options = Options {
        url: None,
        seconds: 5,
        concurrency: 16,
        with_ws: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--with-ws" {
            options.with_ws = true;
            continue;
        }
        let value = args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => options.url = Some(value),
            "--seconds" => options.seconds = value.parse().expect("--seconds is a number"),
            "--concurrency" => options.concurrency = value.parse().expect("--concurrency is a number"),
            other => panic!("unknown flag {other}"),
        }
    }
    options
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = options();
    let (base, _running) = match &options.url {
        Some(url) => (url.trim_end_matches('/').to_string(), None),
        None => {
            let running = spawn(PaperExchangeConfig {
                port: 0,
                ..PaperExchangeConfig::default()
            })
            .await?;
            (running.base_url(), Some(running))
        }
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency)
        .build()?;
    let key = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let secret = uuid::Uuid::new_v4().simple().to_string();
    let created = http
        .post(format!("{base}/paper/accounts"))
        .json(
            &json!({"api_key": key, "api_secret": secret, "balance_usdt": "100000000",
                      "order_create_limit_per_second": 1_000_000}),
        )
        .send()
        .await?;
    anyhow::ensure!(
        created.status().as_u16() == 201,
        "account not created: {}",
        created.text().await?
    );

    let pushes_received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    if options.with_ws {
        let ws_url = format!("{}/v5/private", base.replacen("http", "ws", 1));
        let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await?;
        let expires = chrono::Utc::now().timestamp_millis() + 10_000;
        let sig = humbex_paper_exchange::signing::sign_ws_auth(&secret, expires);
        ws.send(Message::text(
            json!({"op": "auth", "args": [key, expires, sig]}).to_string(),
        ))
        .await?;
        ws.send(Message::text(
            json!({"op": "subscribe", "args": ["order", "execution", "execution.fast", "position", "wallet"]})
                .to_string(),
        ))
        .await?;
        loop {
            let frame = ws.next().await.ok_or_else(|| anyhow::anyhow!("ws closed"))??;
            if frame.to_text().unwrap_or("").contains("\"op\":\"subscribe\"") {
                break;
            }
        }
        let counter = pushes_received.clone();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = ws.next().await {
                if frame.to_text().unwrap_or("").contains("\"topic\"") {
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    }

    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..options.concurrency)
        .map(|worker| {
            let (http, base, key, secret) = (http.clone(), base.clone(), key.clone(), secret.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    // Alternating sides keeps the position, and so the margin, near zero.
                    let side = if n.is_multiple_of(2) { "Buy" } else { "Sell" };
                    let body = json!({"category": "linear", "symbol": "AVAXUSDT", "side": side,
                                      "orderType": "Market", "qty": "1", "orderLinkId": format!("b{worker}-{n}")})
                    .to_string();
                    let timestamp = chrono::Utc::now().timestamp_millis().to_string();
                    let sign = sign_rest(&secret, &timestamp, &key, "5000", &body);
                    let sent = Instant::now();
                    let reply = http
                        .post(format!("{base}/v5/order/create"))
                        .header("X-BAPI-API-KEY", &key)
                        .header("X-BAPI-TIMESTAMP", &timestamp)
                        .header("X-BAPI-RECV-WINDOW", "5000")
                        .header("X-BAPI-SIGN", sign)
                        .header("Content-Type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    let ok = match reply {
                        Ok(r) => r.text().await.map(|t| t.contains("\"retCode\":0")).unwrap_or(false),
                        Err(_) => false,
                    };
                    latencies.push(sent.elapsed());
                    if !ok {
                        errors += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (l, e) = worker.await?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    if options.with_ws {
        println!(
            "pushes:        {} received over the private WebSocket",
            pushes_received.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "order creates: {} in {:.2} s, {} not OK",
        latencies.len(),
        elapsed.as_secs_f64(),
        errors
    );
    println!(
        "throughput:    {:.0} creates/s (concurrency {})",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        options.concurrency
    );
    println!(
        "latency:       p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        latencies.last().copied().unwrap_or_default()
    );
    Ok(())
}
