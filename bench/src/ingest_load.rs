//! POST /webhook under load: ingest runs in-process on its own runtime, the client on another,
//! each request a distinct signed signal for one active user.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use humbex_ingest::webhook::signature::sign_x_signature;
use humbex_shared::config::Config;
use humbex_shared::db::TestDatabase;

use crate::report::{Row, row};

const SECRET: &str = "bench-tradingview-secret-0123456789";

pub async fn run(levels: &[usize], step: Duration) -> anyhow::Result<Vec<Row>> {
    let db = TestDatabase::create().await?;
    let url = db.url.expose_secret().to_owned();
    let vars = move |name: &str| match name {
        "DATABASE_URL" => Some(url.clone()),
        "BACKEND_PORT" => Some("0".into()),
        "TRADINGVIEW_SECRET" => Some(SECRET.into()),
        "ENCRYPTION_KEY_HEX" => Some("11".repeat(32)),
        "ADMIN_TOKEN" => Some("bench-admin-token-0123456789".into()),
        // A benchmark is one trader sending thousands of signals a minute: lift the business limits.
        "RATE_LIMIT_SIGNALS_PER_MINUTE"
        | "RATE_LIMIT_TOKEN_REQUESTS_PER_MINUTE"
        | "RATE_LIMIT_AUTH_FAILURES_PER_MINUTE" => Some("1000000".into()),
        _ => None,
    };
    let config = Config::from_lookup(&vars)?;

    // The server gets a runtime of its own so that client work does not queue behind it.
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let app = humbex_ingest::Application::build(config)
                .await
                .expect("ingest builds");
            let _ = addr_tx.send(app.local_addr());
            let _ = app
                .run_until(async {
                    let _ = stop_rx.await;
                })
                .await;
        });
    });
    let base = format!("http://{}", addr_rx.await?);
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;

    let created: serde_json::Value = http
        .post(format!("{base}/admin/users"))
        .bearer_auth("bench-admin-token-0123456789")
        .json(&serde_json::json!({ "email": "load@bench.local" }))
        .send()
        .await?
        .json()
        .await?;
    let user = created["id"].as_str().unwrap_or_default().to_owned();
    let token = created["webhook_token"].as_str().unwrap_or_default().to_owned();
    http.put(format!("{base}/admin/users/{user}/subscription"))
        .bearer_auth("bench-admin-token-0123456789")
        .json(&serde_json::json!({ "status": "active" }))
        .send()
        .await?
        .error_for_status()?;

    let counter = Arc::new(AtomicU64::new(0));
    let mut rows = Vec::new();
    for &conns in levels {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (http, base, token, stop, counter) = (
                http.clone(),
                base.clone(),
                token.clone(),
                stop.clone(),
                counter.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let body = format!(
                        r#"{{"token":"{token}","action":"buy","symbol":"AVAXUSDT","quantity":"1","id":"bench-{n}"}}"#
                    );
                    let sig = sign_x_signature(SECRET.as_bytes(), body.as_bytes());
                    let started = Instant::now();
                    let resp = http
                        .post(format!("{base}/webhook"))
                        .header("content-type", "application/json")
                        .header("x-signature", sig)
                        .body(body)
                        .send()
                        .await;
                    match resp {
                        Ok(r) if r.status().as_u16() == 202 => {
                            let _ = r.bytes().await;
                            latencies.push(started.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            }));
        }
        let started = Instant::now();
        tokio::time::sleep(step).await; // the measuring window itself
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await?;
            all.extend(l);
            errors += e;
        }
        if errors > 0 {
            eprintln!("ingest at {conns} connections: {errors} requests did not get 202");
        }
        rows.push(row("ingest: POST /webhook → 202", conns, all, started.elapsed()));
    }
    let _ = stop_tx.send(());
    let _ = server.join();
    drop(db);
    Ok(rows)
}
