//! Starting ingest, executors and the paper exchange together, and helpers to drive them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use humbex_bybit::BybitRest;
use humbex_executor::{Executor, ExecutorSettings};
use humbex_ingest::webhook::signature::sign_x_signature;
use humbex_paper_exchange::{AccountSpec, PaperExchangeConfig, RunningPaperExchange};
use humbex_shared::config::{Config, Role};
use humbex_shared::db::TestDatabase;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const SECRET: &str = "executor-test-tradingview-secret";
pub const ADMIN: &str = "executor-test-admin-token-0123";

pub struct Pipeline {
    /// Every secret handed to the system under test, for the leak test.
    pub secrets: std::sync::Mutex<Vec<String>>,
    pub db: TestDatabase,
    pub base: String,
    pub http: reqwest::Client,
    pub paper: RunningPaperExchange,
    /// The executor's opening key; ingest was given only the public key.
    pub opener: humbex_shared::api_key_vault::Opener,
    stops: Vec<oneshot::Sender<()>>,
    executors: Vec<tokio::task::JoinHandle<()>>,
    /// Each started executor's confirmer, in start order, to watch its streams.
    pub confirmers: Vec<humbex_executor::confirm::Confirmer>,
}

/// One role's configuration: ingest gets the webhook secret, the admin token and the public key
/// (nothing that opens); the executor the private key alone.
fn config(db: &TestDatabase, paper_url: &str, role: Role, keys: (&str, &str)) -> Config {
    let (public_hex, private_hex) = keys;
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", db.url.expose_secret().to_owned()),
        ("BACKEND_PORT", "0".into()),
        ("WORKER_POLL_INTERVAL", "0.5".into()),
        ("RATE_LIMIT_SIGNALS_PER_MINUTE", "1000000".into()),
        ("RATE_LIMIT_TOKEN_REQUESTS_PER_MINUTE", "1000000".into()),
        ("RATE_LIMIT_AUTH_FAILURES_PER_MINUTE", "1000000".into()),
        ("BYBIT_REST_URL", paper_url.into()),
        // Any linear USDT symbol: the executor, not ingest, finds out what the exchange lists.
        ("SYMBOLS", "*".into()),
    ]);
    match role {
        Role::Ingest => vars.extend([
            ("TRADINGVIEW_SECRET", SECRET.into()),
            ("ADMIN_TOKEN", ADMIN.into()),
            ("ENCRYPTION_PUBLIC_KEY", public_hex.into()),
        ]),
        _ => vars.extend([("ENCRYPTION_PRIVATE_KEY", private_hex.into())]),
    }
    Config::for_role(role, &|n| vars.get(n).cloned()).expect("config")
}

impl Pipeline {
    /// Ingest, the paper exchange and `executors` executors on one fresh database.
    pub async fn start(executors: usize) -> Pipeline {
        humbex_bybit::ensure_crypto_provider();
        let db = TestDatabase::create().await.expect("database");
        let paper = humbex_paper_exchange::spawn(PaperExchangeConfig {
            port: 0,
            ..PaperExchangeConfig::default()
        })
        .await
        .expect("paper exchange");
        let (private_hex, public) = humbex_shared::crypto::public_key::generate();
        let keys = (public.to_hex(), private_hex.to_string());
        let keys = (keys.0.as_str(), keys.1.as_str());
        let ingest = config(&db, &paper.base_url(), Role::Ingest, keys);
        assert!(ingest.secrets.opener.is_none() && !ingest.secrets.sealer().unwrap().can_open());
        let app = humbex_ingest::Application::build(ingest).await.expect("ingest");
        let base = format!("http://{}", app.local_addr());
        let opener = config(&db, &paper.base_url(), Role::Executor, keys)
            .secrets
            .opener()
            .unwrap()
            .clone();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let mut pipeline = Pipeline {
            secrets: std::sync::Mutex::new(vec![SECRET.into(), ADMIN.into(), private_hex.to_string()]),
            db,
            base,
            http: reqwest::Client::new(),
            paper,
            opener,
            stops: vec![stop],
            executors: Vec::new(),
            confirmers: Vec::new(),
        };
        for _ in 0..executors {
            pipeline.start_executor();
        }
        pipeline
    }

    pub fn start_executor(&mut self) {
        self.start_executor_with(|_| {});
    }

    /// Start an executor whose settings `adjust` changes first.
    pub fn start_executor_with(&mut self, adjust: impl FnOnce(&mut ExecutorSettings)) {
        let executor = self.executor(self.opener.clone(), adjust);
        self.confirmers.push(executor.confirmer());
        let (stop, stopped) = oneshot::channel::<()>();
        self.stops.push(stop);
        self.executors.push(tokio::spawn(async move {
            let _ = executor
                .run_until(async {
                    let _ = stopped.await;
                })
                .await;
        }));
    }

    /// An executor on this pipeline that opens keys with `opener`, not started.
    pub fn executor(
        &self,
        opener: humbex_shared::api_key_vault::Opener,
        adjust: impl FnOnce(&mut ExecutorSettings),
    ) -> Executor {
        let pool = humbex_shared::db::pool(&self.db.url, 8).expect("pool");
        let rest = BybitRest::new(self.paper.base_url()).expect("rest client");
        let mut settings = ExecutorSettings::new(Duration::from_millis(500), vec!["AVAXUSDT".into()]);
        settings.lease = Duration::from_secs(3);
        adjust(&mut settings);
        Executor::new(
            settings,
            pool,
            self.db.url.pg_config(),
            opener,
            rest,
            &self.paper.private_ws_url(),
        )
    }

    /// Kill an executor at once (no graceful shutdown): its leases must expire and be taken over.
    pub fn kill_executor(&mut self, index: usize) {
        self.executors[index].abort();
    }

    /// Stop an executor as SIGTERM does (its shutdown future completes) and wait until it has.
    pub async fn stop_executor(&mut self, index: usize) {
        // stops[0] is ingest's.
        let stop = std::mem::replace(&mut self.stops[index + 1], oneshot::channel().0);
        let _ = stop.send(());
        (&mut self.executors[index]).await.expect("executor task");
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .expect("admin call");
        let status = resp.status();
        let value: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    /// A user with an active subscription and a paper account of `balance` USDT; returns
    /// (user id, webhook token, api key).
    pub async fn trader(&self, email: &str, subscription: Value, balance: &str) -> (String, String, String) {
        self.trader_in_mode(
            email,
            subscription,
            balance,
            humbex_paper_exchange::PositionMode::OneWay,
        )
        .await
    }

    /// As [`Pipeline::trader`], with the paper account in the given position mode.
    pub async fn trader_in_mode(
        &self,
        email: &str,
        subscription: Value,
        balance: &str,
        mode: humbex_paper_exchange::PositionMode,
    ) -> (String, String, String) {
        let user = self
            .admin(reqwest::Method::POST, "/admin/users", json!({ "email": email }))
            .await;
        let id = user["id"].as_str().unwrap().to_owned();
        let mut sub = json!({ "status": "active" });
        for (k, v) in subscription.as_object().unwrap() {
            sub[k] = v.clone();
        }
        self.admin(
            reqwest::Method::PUT,
            &format!("/admin/users/{id}/subscription"),
            sub,
        )
        .await;
        let api_key = format!("K{}", &uuid::Uuid::new_v4().simple().to_string()[..17]);
        let api_secret = format!("S{}", uuid::Uuid::new_v4().simple());
        self.secrets
            .lock()
            .unwrap()
            .extend([api_secret.clone(), api_key.clone()]);
        self.paper
            .exchange()
            .create_account(AccountSpec {
                position_mode: mode,
                ..AccountSpec::new(
                    api_key.clone(),
                    api_secret.clone(),
                    balance.parse::<Decimal>().unwrap(),
                )
            })
            .expect("paper account");
        self.admin(
            reqwest::Method::POST,
            &format!("/admin/users/{id}/api-keys"),
            json!({ "api_key": api_key, "api_secret": api_secret }),
        )
        .await;
        let token = user["webhook_token"].as_str().unwrap().to_owned();
        self.secrets.lock().unwrap().push(token.clone());
        (id, token, api_key)
    }

    /// POST a signed signal; returns the signal id.
    pub async fn signal(&self, token: &str, fields: Value) -> String {
        let mut body = json!({ "token": token, "symbol": "AVAXUSDT" });
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        let body = body.to_string();
        let resp = self
            .http
            .post(format!("{}/webhook", self.base))
            .header("content-type", "application/json")
            .header(
                "x-signature",
                sign_x_signature(SECRET.as_bytes(), body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let value: Value = resp.json().await.unwrap();
        assert_eq!(status, 202, "{value}");
        value["signal_id"].as_str().unwrap().to_owned()
    }

    /// The paper exchange's record of an account's orders: (side, qty, reduce_only, link id).
    pub fn exchange_orders(&self, api_key: &str) -> Vec<(String, Decimal, bool, String)> {
        self.paper
            .exchange()
            .orders(api_key)
            .expect("account")
            .into_iter()
            .map(|o| (format!("{:?}", o.side), o.qty, o.reduce_only, o.order_link_id))
            .collect()
    }

    pub async fn db(&self) -> tokio_postgres::Client {
        humbex_shared::db::connect(&self.db.url.pg_config())
            .await
            .unwrap()
    }

    /// Wait until the signal is no longer received/processing; returns its status.
    pub async fn settled(&self, signal_id: &str) -> String {
        let db = self.db().await;
        let id: uuid::Uuid = signal_id.parse().unwrap();
        wait_for(Duration::from_secs(20), || async {
            let row = db
                .query_one("SELECT status FROM signals WHERE id = $1", &[&id])
                .await
                .unwrap();
            let status: String = row.get("status");
            (status == "done" || status == "rejected").then_some(status)
        })
        .await
        .unwrap_or_else(|| panic!("signal {signal_id} did not settle"))
    }

    /// Wait until no order row is pending: every account's owner has placed and answered its
    /// orders.
    pub async fn no_pending_orders(&self) {
        let db = self.db().await;
        wait_for(Duration::from_secs(20), || async {
            let row = db
                .query_one("SELECT count(*) AS n FROM orders WHERE status = 'pending'", &[])
                .await
                .unwrap();
            (row.get::<_, i64>("n") == 0).then_some(())
        })
        .await
        .expect("every order answered");
    }

    /// The order rows of a signal: (user_id, status, qty, error).
    pub async fn orders_of(&self, signal_id: &str) -> Vec<(String, String, Option<Decimal>, Option<String>)> {
        let id: uuid::Uuid = signal_id.parse().unwrap();
        self.db()
            .await
            .query(
                "SELECT user_id::text AS user_id, status, qty, error FROM orders WHERE signal_id = $1 ORDER BY user_id",
                &[&id],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("user_id"), r.get("status"), r.get("qty"), r.get("error")))
            .collect()
    }
}

/// Poll `check` until it yields a value or `limit` passes (a condition wait, not a fixed sleep).
pub async fn wait_for<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
