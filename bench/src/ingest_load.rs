//! POST /webhook under load: ingest runs in-process on its own runtime, the client on another,
//! each request a distinct signed signal for one active user.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use humbex_ingest::webhook::signature::sign_x_signature;
use humbex_shared::config::Config;
use humbex_shared::db::TestDatabase;

use crate::pipeline::{ADMIN, SECRET};
use crate::report::{Row, row};

/// Ingest on a runtime of its own (threads named `ingest`), so that client work does not queue
/// behind it, with the business limits lifted (a benchmark is one trader sending thousands of
/// signals a minute). Stop it with [`InProcessIngest::stop`].
pub struct InProcessIngest {
    pub addr: std::net::SocketAddr,
    pub state: Arc<humbex_ingest::state::AppState>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: std::thread::JoinHandle<()>,
}

impl InProcessIngest {
    pub async fn start(db: &TestDatabase) -> anyhow::Result<InProcessIngest> {
        let url = db.url.expose_secret().to_owned();
        let vars = move |name: &str| match name {
            "DATABASE_URL" => Some(url.clone()),
            "BACKEND_PORT" => Some("0".into()),
            "TRADINGVIEW_SECRET" => Some(SECRET.into()),
            "ENCRYPTION_KEY_HEX" => Some("11".repeat(32)),
            "ADMIN_TOKEN" => Some(ADMIN.into()),
            "RATE_LIMIT_SIGNALS_PER_MINUTE"
            | "RATE_LIMIT_TOKEN_REQUESTS_PER_MINUTE"
            | "RATE_LIMIT_AUTH_FAILURES_PER_MINUTE" => Some("1000000".into()),
            _ => None,
        };
        let config = Config::from_lookup(&vars)?;
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .thread_name("ingest")
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let app = humbex_ingest::Application::build(config)
                    .await
                    .expect("ingest builds");
                let _ = ready_tx.send((app.local_addr(), app.state()));
                let _ = app
                    .run_until(async {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
        });
        let (addr, state) = ready_rx.await?;
        Ok(InProcessIngest {
            addr,
            state,
            stop,
            server,
        })
    }

    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.join();
    }
}

pub async fn run(levels: &[usize], step: Duration) -> anyhow::Result<Vec<Row>> {
    let db = TestDatabase::create().await?;
    let ingest = InProcessIngest::start(&db).await?;
    let base = format!("http://{}", ingest.addr);
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;

    let token = crate::console_feed::active_user(&http, &base, "load@bench.local").await?;

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
    ingest.stop();
    drop(db);
    Ok(rows)
}
