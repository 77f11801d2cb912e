//! Starting ingest on port 0 against a fresh database, and the helpers tests share.

use std::collections::HashMap;
use std::sync::Arc;

use humbex_ingest::Application;
use humbex_ingest::webhook::signature::sign_x_signature;
use humbex_shared::config::Config;
use humbex_shared::db::TestDatabase;
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const SECRET: &str = "test-tradingview-secret-0123456789";
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const ENCRYPTION_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub db: Option<TestDatabase>,
    /// The in-process paper exchange, when the options asked for one.
    pub paper: Option<humbex_paper_exchange::RunningPaperExchange>,
    /// The running service's state (the console's live feed counters, say).
    pub state: Arc<humbex_ingest::state::AppState>,
    _stop: oneshot::Sender<()>,
}

/// Options a test may change from the defaults.
#[derive(Default)]
pub struct Options {
    pub env: Vec<(&'static str, String)>,
    /// Point the service at a database nobody listens on.
    pub dead_database: bool,
    /// Point the service at this URL instead of a fresh database (a server that hangs, say).
    pub database_url: Option<String>,
    pub clock: Option<Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>>,
    /// Spawn a paper exchange in-process and point the service at it (BYBIT_ENV=paper unless
    /// `env` says otherwise, BYBIT_REST_URL, BYBIT_WS_PRIVATE_URL).
    pub paper_exchange: bool,
}

pub fn http_client() -> reqwest::Client {
    humbex_bybit::ensure_crypto_provider();
    reqwest::Client::builder().build().expect("http client")
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> TestApp {
        let db = if options.dead_database || options.database_url.is_some() {
            None
        } else {
            Some(TestDatabase::create().await.expect("test database"))
        };
        let database_url = match (&db, options.database_url) {
            (Some(db), _) => db.url.expose_secret().to_owned(),
            (None, Some(url)) => url,
            (None, None) => "postgres://postgres@127.0.0.1:1/nowhere".to_owned(),
        };
        let mut vars: HashMap<&str, String> = HashMap::from([
            ("DATABASE_URL", database_url),
            ("BACKEND_PORT", "0".into()),
            ("TRADINGVIEW_SECRET", SECRET.into()),
            ("ENCRYPTION_KEY_HEX", ENCRYPTION_KEY.into()),
            ("ADMIN_TOKEN", ADMIN_TOKEN.into()),
            ("SYMBOLS", "AVAXUSDT,BTCUSDT".into()),
            // Nobody listens here: a test never reaches a paper exchange it did not ask for
            // (say one a developer runs on the default port).
            ("BYBIT_REST_URL", "http://127.0.0.1:1".into()),
            // Every test talks from 127.0.0.1 and many probe failures on purpose: the limits are
            // out of the way unless a test (rate_limits.rs) sets them.
            ("RATE_LIMIT_AUTH_FAILURES_PER_MINUTE", "1000000".into()),
            ("RATE_LIMIT_TOKEN_REQUESTS_PER_MINUTE", "1000000".into()),
            ("RATE_LIMIT_SIGNALS_PER_MINUTE", "1000000".into()),
            ("RATE_LIMIT_UNKNOWN_TOKENS_PER_MINUTE", "1000000".into()),
        ]);
        let paper = if options.paper_exchange {
            let paper = humbex_paper_exchange::spawn(humbex_paper_exchange::PaperExchangeConfig {
                port: 0,
                ..Default::default()
            })
            .await
            .expect("paper exchange starts");
            vars.insert("BYBIT_ENV", "paper".into());
            vars.insert("BYBIT_REST_URL", paper.base_url());
            vars.insert("BYBIT_WS_PRIVATE_URL", paper.private_ws_url());
            Some(paper)
        } else {
            None
        };
        for (k, v) in options.env {
            vars.insert(k, v);
        }
        let config = Config::from_lookup(&|n| vars.get(n).cloned()).expect("test config");
        let mut app = Application::build(config).await.expect("app builds");
        if let Some(clock) = options.clock {
            app = app.with_clock(clock);
        }
        let base = format!("http://{}", app.local_addr());
        let state = app.state();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        TestApp {
            base,
            http: http_client(),
            db,
            paper,
            state,
            _stop: stop,
        }
    }

    pub fn paper(&self) -> &humbex_paper_exchange::RunningPaperExchange {
        self.paper.as_ref().expect("spawned with paper_exchange: true")
    }

    /// An account on the paper exchange, created directly through its control API (as a user's
    /// key on Bybit would be made on Bybit's site), with `extra` fields such as permissions.
    pub async fn paper_account(&self, api_key: &str, api_secret: &str, extra: Value) {
        let mut body = json!({ "api_key": api_key, "api_secret": api_secret });
        if let (Some(map), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                map.insert(k.clone(), v.clone());
            }
        }
        let resp = self
            .http
            .post(format!("{}/paper/accounts", self.paper().base_url()))
            .json(&body)
            .send()
            .await
            .expect("paper control request");
        let (status, answer) = read(resp).await;
        assert_eq!(status, 201, "{answer}");
    }

    /// POST /admin/users/{user}/api-keys.
    pub async fn add_key(&self, user: &str, api_key: &str, api_secret: &str) -> (u16, Value) {
        self.admin(
            reqwest::Method::POST,
            &format!("/admin/users/{user}/api-keys"),
            Some(json!({ "api_key": api_key, "api_secret": api_secret })),
        )
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A direct database connection for assertions.
    pub async fn db(&self) -> tokio_postgres::Client {
        let url = &self.db.as_ref().expect("a live database").url;
        humbex_shared::db::connect(&url.pg_config())
            .await
            .expect("connect")
    }

    pub async fn count(&self, sql: &str) -> i64 {
        self.db()
            .await
            .query_one(sql, &[])
            .await
            .map(|row| {
                // A scalar query by contract: one column, so reading it by place cannot shift.
                assert_eq!(row.len(), 1, "a count query answers one column: {sql}");
                row.get(0)
            })
            .expect("count query")
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("admin request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// A user with an active subscription; returns (user id, webhook token).
    pub async fn active_user(&self, email: &str) -> (String, String) {
        let (status, user) = self
            .admin(
                reqwest::Method::POST,
                "/admin/users",
                Some(json!({ "email": email })),
            )
            .await;
        assert_eq!(status, 201, "{user}");
        let id = user["id"].as_str().unwrap().to_owned();
        let (status, sub) = self
            .admin(
                reqwest::Method::PUT,
                &format!("/admin/users/{id}/subscription"),
                Some(json!({ "status": "active" })),
            )
            .await;
        assert_eq!(status, 200, "{sub}");
        (id, user["webhook_token"].as_str().unwrap().to_owned())
    }

    /// POST /webhook with an X-Signature over exactly `body`.
    pub async fn signed(&self, body: &str) -> (u16, Value) {
        let sig = sign_x_signature(SECRET.as_bytes(), body.as_bytes());
        let resp = self
            .http
            .post(self.url("/webhook"))
            .header("content-type", "application/json")
            .header("x-signature", sig)
            .body(body.to_owned())
            .send()
            .await
            .expect("webhook request");
        read(resp).await
    }

    /// POST /webhook/tradingview as TradingView sends it (text/plain).
    pub async fn tradingview(&self, body: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url("/webhook/tradingview"))
            .header("content-type", "text/plain; charset=utf-8")
            .body(body.to_owned())
            .send()
            .await
            .expect("webhook request");
        read(resp).await
    }
}

pub async fn read(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// A signal body for `token`.
pub fn signal(token: &str, extra: Value) -> String {
    let mut body = json!({ "token": token, "action": "buy", "symbol": "AVAXUSDT", "quantity": "1.5" });
    if let (Some(map), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            map.insert(k.clone(), v.clone());
        }
    }
    body.to_string()
}
