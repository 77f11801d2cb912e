//! The real pipeline in this process: the paper exchange, ingest and the executor each on a Tokio
//! runtime of its own (threads named after the role, so CPU time can be told apart), on a fresh
//! database of the local PostgreSQL, driven over HTTP by the caller's runtime.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use humbex_bybit::BybitRest;
use humbex_executor::{Executor, ExecutorSettings};
use humbex_ingest::webhook::signature::sign_x_signature;
use humbex_paper_exchange::{AccountSpec, PaperExchangeConfig, RunningPaperExchange};
use humbex_shared::config::Config;
use humbex_shared::db::TestDatabase;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

pub const SECRET: &str = "bench-tradingview-secret-0123456789";
pub const ADMIN: &str = "bench-admin-token-0123456789";
/// Large enough that no benchmark order is refused for margin.
const BALANCE_USDT: i64 = 1_000_000_000;

/// One account that signals can target: its user's or its strategy's webhook token.
#[derive(Debug, Clone)]
pub struct Trader {
    pub token: String,
    pub api_key: String,
}

pub struct Pipeline {
    pub db: TestDatabase,
    pub base: String,
    pub http: reqwest::Client,
    pub paper: RunningPaperExchange,
    vars: HashMap<&'static str, String>,
    /// Options only so that Drop can take them: a runtime must not be dropped inside another.
    paper_rt: Option<Runtime>,
    ingest_rt: Option<Runtime>,
    ingest_stop: Option<oneshot::Sender<()>>,
    /// Each executor started in this process: its runtime, stop and task.
    executors: Vec<(Runtime, oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
    /// Executors started as `humbex executor` processes ([`Pipeline::start_executor_processes`]),
    /// stopped with SIGTERM (their graceful hand-over) and killed if they linger.
    processes: Vec<std::process::Child>,
}

/// Private stream connects per minute for the executors the bench starts, unless a scenario says
/// otherwise: far above what any scenario opens, so only `accounts` measures the paced start-up.
pub const CONNECTS_PER_MINUTE: u32 = 1_000_000;

fn runtime(role: &str) -> anyhow::Result<Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .thread_name(role)
        .enable_all()
        .build()?)
}

/// `HUMBEX_BENCH_SQL=<file>`: SQL run on the fresh database after the migrations, before anything
/// starts, so an experiment (what one index or trigger costs) needs no rebuild. Printed, so a figure
/// taken with it is never mistaken for the product's.
async fn experiment_sql(db: &TestDatabase) -> anyhow::Result<()> {
    let Ok(path) = std::env::var("HUMBEX_BENCH_SQL") else {
        return Ok(());
    };
    let sql = std::fs::read_to_string(&path).with_context(|| format!("HUMBEX_BENCH_SQL={path}"))?;
    eprintln!("HUMBEX_BENCH_SQL: running {path} on the fresh database (an experiment, not the product)");
    let client = humbex_shared::db::connect(&db.url.pg_config()).await?;
    client
        .batch_execute(&sql)
        .await
        .with_context(|| format!("HUMBEX_BENCH_SQL={path}"))?;
    Ok(())
}

impl Pipeline {
    /// The paper exchange and ingest; the executor starts with [`Pipeline::start_executor`] so
    /// that scenarios can store work while it is down.
    pub async fn start() -> anyhow::Result<Pipeline> {
        let db = TestDatabase::create().await?;
        experiment_sql(&db).await?;
        let paper_rt = runtime("paper")?;
        let paper = paper_rt
            .spawn(humbex_paper_exchange::spawn(PaperExchangeConfig {
                port: 0,
                ..PaperExchangeConfig::default()
            }))
            .await??;
        let url = db.url.expose_secret().to_owned();
        let rest = paper.base_url();
        let ws = paper.private_ws_url();
        let vars: HashMap<&str, String> = HashMap::from([
            ("DATABASE_URL", url),
            ("BACKEND_PORT", "0".into()),
            // Executors started as processes (the resources scenario) each serve their own.
            ("METRICS_PORT", "0".into()),
            ("TRADINGVIEW_SECRET", SECRET.into()),
            ("ENCRYPTION_KEY_HEX", "11".repeat(32)),
            ("ADMIN_TOKEN", ADMIN.into()),
            ("BYBIT_REST_URL", rest),
            ("BYBIT_WS_PRIVATE_URL", ws),
            // One trader sending thousands of signals a minute from one address: lift the
            // business limits, which would otherwise (rightly) throttle the benchmark.
            ("RATE_LIMIT_SIGNALS_PER_MINUTE", "1000000".into()),
            ("RATE_LIMIT_TOKEN_REQUESTS_PER_MINUTE", "1000000".into()),
            ("RATE_LIMIT_AUTH_FAILURES_PER_MINUTE", "1000000".into()),
            (
                "EXECUTOR_STREAM_CONNECTS_PER_MINUTE",
                CONNECTS_PER_MINUTE.to_string(),
            ),
        ]);
        let config = Config::from_lookup(&|n| vars.get(n).cloned())?;
        let ingest_rt = runtime("ingest")?;
        let (addr_tx, addr_rx) = oneshot::channel();
        let (ingest_stop, stopped) = oneshot::channel::<()>();
        let ingest_config = config;
        ingest_rt.spawn(async move {
            let app = match humbex_ingest::Application::build(ingest_config).await {
                Ok(app) => app,
                Err(e) => {
                    let _ = addr_tx.send(Err(e));
                    return;
                }
            };
            let _ = addr_tx.send(Ok(app.local_addr()));
            let _ = app
                .run_until(async {
                    let _ = stopped.await;
                })
                .await;
        });
        let base = format!("http://{}", addr_rx.await??);
        Ok(Pipeline {
            db,
            base,
            http: reqwest::Client::builder().pool_max_idle_per_host(256).build()?,
            paper,
            vars,
            paper_rt: Some(paper_rt),
            ingest_rt: Some(ingest_rt),
            ingest_stop: Some(ingest_stop),
            executors: Vec::new(),
            processes: Vec::new(),
        })
    }

    /// Start one executor on its own runtime and wait until `streams` accounts have their
    /// private WebSocket open, so that no measurement includes connecting.
    pub async fn start_executor(&mut self, streams: usize) -> anyhow::Result<()> {
        self.start_executors(1, streams).await
    }

    /// Start `n` executors, each on its own runtime (they share the accounts through leases), and
    /// wait until `streams` accounts have their private WebSocket open.
    pub async fn start_executors(&mut self, n: usize, streams: usize) -> anyhow::Result<()> {
        for i in 0..n {
            let rt = runtime(&format!("executor{i}"))?;
            let pool = humbex_shared::db::pool(&self.db.url, humbex_shared::config::POOL_SIZE)?;
            let pg = self.db.url.pg_config();
            let opener = Config::from_lookup(&|n| self.vars.get(n).cloned())?
                .secrets
                .opener()?
                .clone();
            let rest = BybitRest::new(self.paper.base_url()).map_err(|e| anyhow::anyhow!("{e}"))?;
            let ws = self.paper.private_ws_url();
            let (stop, stopped) = oneshot::channel::<()>();
            let task = rt.spawn(async move {
                // A short poll: the sweep is only a fallback here, NOTIFY wakes the executor.
                let mut settings = ExecutorSettings::new(Duration::from_millis(500), vec!["AVAXUSDT".into()]);
                settings.stream_connects_per_minute = CONNECTS_PER_MINUTE;
                let executor = Executor::new(settings, pool, pg, opener, rest, &ws);
                let _ = executor
                    .run_until(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
            self.executors.push((rt, stop, task));
        }
        if n > 1 && streams > 0 {
            self.wait_for_even_shares(n, streams).await?;
        }
        self.wait_for_streams(streams).await
    }

    /// Start `n` executors as `humbex executor` processes and wait as [`Pipeline::start_executors`]
    /// does. For fleets whose sockets do not fit in this process: in-process, the paper exchange
    /// and the executors hold both ends of every private stream, 20,000 descriptors for 10,000
    /// accounts, which is this machine's hard limit on open files.
    pub async fn start_executor_processes(&mut self, n: usize, streams: usize) -> anyhow::Result<()> {
        for _ in 0..n {
            let child = self.executor_process()?;
            self.processes.push(child);
        }
        if n > 1 && streams > 0 {
            self.wait_for_even_shares(n, streams).await?;
        }
        self.wait_for_streams(streams).await
    }

    /// Wait until `n` executors hold `accounts` accounts between them, none above its fair share
    /// (the accounts over the executors, rounded up), so no measurement includes the first
    /// rebalance.
    async fn wait_for_even_shares(&self, n: usize, accounts: usize) -> anyhow::Result<()> {
        let db = self.client().await?;
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let held: Vec<i64> = db
                .query(
                    "SELECT count(*) AS n FROM account_leases WHERE leased_until > now() GROUP BY executor_id",
                    &[],
                )
                .await?
                .iter()
                .map(|r| r.get("n"))
                .collect();
            let total: i64 = held.iter().sum();
            let fair = accounts.div_ceil(n) as i64;
            let most = held.iter().copied().max().unwrap_or(0);
            if held.len() == n && total as usize == accounts && most <= fair {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "accounts not spread over {n} executors: {held:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The executor as its own `humbex executor` process (the binary beside this one), so that
    /// its memory and CPU can be read from /proc on their own.
    pub fn executor_process(&self) -> anyhow::Result<std::process::Child> {
        self.executor_process_with(&[])
    }

    /// [`Pipeline::executor_process`] with more (or overriding) environment variables.
    pub fn executor_process_with(&self, extra: &[(&str, String)]) -> anyhow::Result<std::process::Child> {
        let exe = std::env::current_exe()?;
        let humbex = exe.with_file_name("humbex");
        anyhow::ensure!(
            humbex.exists(),
            "{} is missing: build it with `cargo build --release -p humbex -p bench`",
            humbex.display()
        );
        let mut cmd = std::process::Command::new(humbex);
        cmd.arg("executor")
            .env_clear()
            .env("BYBIT_ENV", "paper")
            // Benchmarks run as root on the CI machine; the executor refuses root without this.
            .env("ALLOW_RUN_AS_ROOT", "true")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (k, v) in self.vars.iter().filter(|(k, _)| **k != "BACKEND_PORT") {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Ok(cmd.spawn()?)
    }

    pub async fn wait_for_streams(&self, streams: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.paper.exchange().listening_accounts() < streams {
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {} of {streams} private streams opened",
                self.paper.exchange().listening_accounts()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A stream counts once authenticated; its topic subscriptions are acknowledged just after,
        // and a push sent before that is not delivered (the order is then confirmed over REST,
        // without a fill row). Under load that gap reached seconds for the last of 1,000 streams.
        if streams > 0 {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        Ok(())
    }

    /// An admin call; a 503 (the database busy on this shared machine) is retried, since setup
    /// is not what is measured.
    async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> anyhow::Result<Value> {
        let mut tries = 0;
        loop {
            let resp = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(ADMIN)
                .json(&body)
                .send()
                .await?;
            let status = resp.status();
            let value: Value = resp.json().await.unwrap_or(Value::Null);
            if status.as_u16() == 503 && tries < 10 {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                continue;
            }
            anyhow::ensure!(status.is_success(), "{path}: {status} {value}");
            return Ok(value);
        }
    }

    /// A strategy; returns (id, webhook token).
    pub async fn strategy(&self, name: &str) -> anyhow::Result<(String, String)> {
        let s = self
            .admin(
                reqwest::Method::POST,
                "/admin/strategies",
                json!({ "name": name }),
            )
            .await?;
        Ok((
            s["id"].as_str().unwrap_or_default().to_owned(),
            s["webhook_token"].as_str().unwrap_or_default().to_owned(),
        ))
    }

    /// `n` users with an active subscription (to `strategy` if given), each with a paper
    /// account and its key registered through the admin API, created 8 at a time.
    pub async fn traders(&self, n: usize, strategy: Option<&str>) -> anyhow::Result<Vec<Trader>> {
        let run = uuid::Uuid::new_v4().simple().to_string();
        futures_util::stream::iter(0..n)
            .map(|i| {
                let run = run.clone();
                async move {
                    let user = self
                        .admin(
                            reqwest::Method::POST,
                            "/admin/users",
                            json!({ "email": format!("t{i}-{}@bench.local", &run[..8]) }),
                        )
                        .await?;
                    let id = user["id"].as_str().unwrap_or_default().to_owned();
                    let mut sub = json!({ "status": "active" });
                    if let Some(s) = strategy {
                        sub["strategy_id"] = json!(s);
                    }
                    self.admin(
                        reqwest::Method::PUT,
                        &format!("/admin/users/{id}/subscription"),
                        sub,
                    )
                    .await?;
                    let api_key = format!("K{}", &uuid::Uuid::new_v4().simple().to_string()[..17]);
                    let api_secret = format!("S{}", uuid::Uuid::new_v4().simple());
                    self.paper
                        .exchange()
                        .create_account(AccountSpec::new(
                            api_key.clone(),
                            api_secret.clone(),
                            Decimal::from(BALANCE_USDT),
                        ))
                        .map_err(|e| anyhow::anyhow!("paper account: {e:?}"))?;
                    self.admin(
                        reqwest::Method::POST,
                        &format!("/admin/users/{id}/api-keys"),
                        json!({ "api_key": api_key, "api_secret": api_secret }),
                    )
                    .await?;
                    Ok::<_, anyhow::Error>(Trader {
                        token: user["webhook_token"].as_str().unwrap_or_default().to_owned(),
                        api_key,
                    })
                }
            })
            .buffered(8)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    /// POST one signed signal; returns the signal id once the 202 is read.
    pub async fn signal(&self, token: &str, action: &str, id: &str) -> anyhow::Result<uuid::Uuid> {
        let body = format!(
            r#"{{"token":"{token}","action":"{action}","symbol":"AVAXUSDT","quantity":"1","id":"{id}"}}"#
        );
        let sig = sign_x_signature(SECRET.as_bytes(), body.as_bytes());
        let resp = self
            .http
            .post(format!("{}/webhook", self.base))
            .header("content-type", "application/json")
            .header("x-signature", sig)
            .body(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let value: Value = resp.json().await?;
        anyhow::ensure!(status == 202, "webhook: {status} {value}");
        Ok(value["signal_id"].as_str().unwrap_or_default().parse()?)
    }

    /// The bench's own connection. Its statements keep generic plans: the waits run thousands of
    /// polls, and planning each one afresh took CPU from the pipeline being measured.
    pub async fn client(&self) -> anyhow::Result<tokio_postgres::Client> {
        let client = humbex_shared::db::connect(&self.db.url.pg_config()).await?;
        client
            .batch_execute("SET plan_cache_mode = force_generic_plan")
            .await?;
        Ok(client)
    }

    /// When the exchange created each order of these accounts, by order link id (its own clock).
    pub fn exchange_times(&self, api_keys: &[&str]) -> HashMap<String, DateTime<Utc>> {
        let mut times = HashMap::new();
        for key in api_keys {
            for o in self.paper.exchange().orders(key).unwrap_or_default() {
                times.insert(o.order_link_id, o.created_at);
            }
        }
        times
    }

    /// Stop every role; runtimes are shut down in the background (this runs inside a runtime).
    pub async fn shutdown(mut self) {
        for child in std::mem::take(&mut self.processes) {
            let _ = stop_process(child, Duration::from_secs(15)).await;
        }
        for (rt, stop, task) in std::mem::take(&mut self.executors) {
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
            rt.shutdown_background();
        }
        if let Some(stop) = self.ingest_stop.take() {
            let _ = stop.send(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGTERM an executor process, so it hands its accounts over and stops as in production, and
/// SIGKILL it if it is still there after `within`.
pub async fn stop_process(mut child: std::process::Child, within: Duration) -> anyhow::Result<()> {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + within;
    while child.try_wait()?.is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if child.try_wait()?.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    Ok(())
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // Not shut down (a scenario failed): no hand-over to wait for.
        for mut child in std::mem::take(&mut self.processes) {
            let _ = child.kill();
            let _ = child.wait();
        }
        for (rt, stop, _) in std::mem::take(&mut self.executors) {
            let _ = stop.send(());
            rt.shutdown_background();
        }
        for rt in [self.ingest_rt.take(), self.paper_rt.take()]
            .into_iter()
            .flatten()
        {
            rt.shutdown_background();
        }
    }
}

/// Per order of `signal`: (order link id, when the fill row was written), waiting until
/// `expected` orders have a fill or `timeout` passes.
pub async fn wait_for_fills(
    db: &tokio_postgres::Client,
    signals: &[uuid::Uuid],
    expected: usize,
    poll: Duration,
    timeout: Duration,
) -> anyhow::Result<Vec<(String, DateTime<Utc>)>> {
    // One signal (the latency scenario, polling every millisecond) gets a scalar parameter, and
    // the bench's connection keeps generic plans (`Pipeline::client`): PostgreSQL otherwise
    // planned every poll afresh, CPU taken from the pipeline being measured.
    let (sql, one) = match signals {
        [one] => ("= $1", Some(*one)),
        _ => ("= ANY($1)", None),
    };
    let count = db
        .prepare(&format!(
            "SELECT count(DISTINCT o.id) AS n FROM orders o JOIN fills f ON f.order_id = o.id \
             WHERE o.signal_id {sql}"
        ))
        .await?;
    let deadline = Instant::now() + timeout;
    loop {
        let n: i64 = match &one {
            Some(id) => db.query_one(&count, &[id]).await?,
            None => db.query_one(&count, &[&signals]).await?,
        }
        .get("n");
        if n as usize >= expected {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {n} of {expected} orders filled after {timeout:?}"
        );
        tokio::time::sleep(poll).await;
    }
    let rows = db
        .query(
            "SELECT o.order_link_id, min(f.created_at) AS first_fill FROM orders o JOIN fills f ON f.order_id = o.id \
             WHERE o.signal_id = ANY($1) GROUP BY o.order_link_id",
            &[&signals],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get("order_link_id"), r.get("first_fill")))
        .collect())
}

/// `later - earlier` as a duration (zero if the clocks disagree by a hair the wrong way).
pub fn between(earlier: DateTime<Utc>, later: DateTime<Utc>) -> Duration {
    (later - earlier).to_std().unwrap_or_default()
}
