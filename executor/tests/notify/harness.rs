//! The notification tests' world: a fresh database with a user, a key, a signal and an order made
//! by SQL (so the V7 triggers write the outbox as the executor's own statements would), a
//! stand-in of Telegram's Bot API and a webhook receiver in one local HTTP server (Telegram cannot
//! run here), and a real SMTP server (Debian's aiosmtpd) writing what it receives to a maildir.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use humbex_executor::notify::{Notifier, NotifierSettings};
use humbex_shared::api_key_vault::Opener;
use humbex_shared::config::{NotifyConfig, OpsDestinations, TelegramConfig, WebhookSecret};
use humbex_shared::db::TestDatabase;
use humbex_shared::store::notifications as sql;
use poem::web::Data;
use poem::{EndpointExt, Request, handler};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::smtp::{Smtp, smtp_config};

pub const BOT_TOKEN: &str = "123456:TEST-bot-token-never-in-a-message_x";
pub const OPS_SECRET: &str = "ops-webhook-secret-0123456789abcdef";
pub const API_KEY: &str = "LEAKCHECKAPIKEY1234";
pub const API_SECRET: &str = "LEAKCHECKAPISECRETabcdefghijklmnop12";
pub const USER_CHAT: &str = "1001";
pub const OPS_CHAT: &str = "-2002";
pub const UNKNOWN_CHAT: &str = "404404";

/// Every log line of every test in this binary, at trace level, for the leak check. One global
/// subscriber: a per-test (thread-local) one misses events whose callsites another thread cached.
pub static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogSink;

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(|| LogSink)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
    });
}

/// One request the stand-in received (recorded on arrival, before it answers).
#[derive(Debug, Clone)]
pub struct Captured {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Default)]
pub struct StandInState {
    pub requests: Mutex<Vec<Captured>>,
    /// Answer 500 to this many of the next requests whose path contains the key.
    pub fail_next: Mutex<HashMap<String, usize>>,
    /// Requests whose path contains a key here wait for a permit before answering.
    pub gates: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    pub arrived: AtomicUsize,
}

#[handler]
async fn answer_as_telegram_or_webhook(
    req: &Request,
    body: poem::Body,
    state: Data<&Arc<StandInState>>,
) -> poem::Response {
    let path = req.uri().path().to_owned();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = body.into_vec().await.unwrap_or_default();
    let captured = Captured {
        path: path.clone(),
        headers,
        body,
    };
    let chat = captured
        .json()
        .get("chat_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    state.requests.lock().unwrap().push(captured);
    state.arrived.fetch_add(1, Ordering::SeqCst);
    let gate = state
        .gates
        .lock()
        .unwrap()
        .iter()
        .find(|(k, _)| path.contains(k.as_str()))
        .map(|(_, g)| g.clone());
    if let Some(gate) = gate {
        gate.acquire().await.expect("gate open").forget();
    }
    let fail = {
        let mut fails = state.fail_next.lock().unwrap();
        match fails
            .iter_mut()
            .find(|(k, n)| path.contains(k.as_str()) && **n > 0)
        {
            Some((_, n)) => {
                *n -= 1;
                true
            }
            None => false,
        }
    };
    let answer = |status: u16, body: Value| {
        poem::Response::builder()
            .status(poem::http::StatusCode::from_u16(status).unwrap())
            .content_type("application/json")
            .body(body.to_string())
    };
    if fail {
        return answer(
            500,
            json!({"ok": false, "error_code": 500, "description": "Internal Server Error"}),
        );
    }
    if path.starts_with("/bot") && chat.as_deref() == Some(UNKNOWN_CHAT) {
        return answer(
            400,
            json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}),
        );
    }
    answer(200, json!({"ok": true, "result": {}}))
}

pub struct StandIn {
    pub base: String,
    pub state: Arc<StandInState>,
}

impl StandIn {
    pub async fn start() -> StandIn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(StandInState::default());
        let app = poem::Route::new()
            .at("/*path", poem::post(answer_as_telegram_or_webhook))
            .data(state.clone());
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        StandIn { base, state }
    }

    pub fn requests(&self, path_part: &str) -> Vec<Captured> {
        self.state
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.contains(path_part))
            .cloned()
            .collect()
    }

    pub fn fail_next(&self, path_part: &str, n: usize) {
        self.state.fail_next.lock().unwrap().insert(path_part.into(), n);
    }

    /// Hold requests to `path_part` until permits are added to the returned semaphore.
    pub fn gate(&self, path_part: &str) -> Arc<tokio::sync::Semaphore> {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        self.state
            .gates
            .lock()
            .unwrap()
            .insert(path_part.into(), gate.clone());
        gate
    }
}

pub struct World {
    pub db: TestDatabase,
    pub stand_in: StandIn,
    pub smtp: Smtp,
    pub opener: Opener,
    pub user_id: Uuid,
    pub key_id: Uuid,
    /// The user's webhook secret as the admin API would have returned it.
    pub user_webhook_secret: String,
}

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

impl World {
    /// A user subscribed to every event on every channel, with one Bybit key.
    pub async fn start() -> World {
        humbex_bybit::ensure_crypto_provider();
        capture_logs();
        let db = TestDatabase::create().await.expect("database");
        let stand_in = StandIn::start().await;
        let smtp = Smtp::start().await;
        let keyring = humbex_shared::crypto::Keyring::new([(1u32, [7u8; 32])].into(), 1).unwrap();
        let (sealer, opener) = humbex_shared::api_key_vault::from_keyring(keyring);
        let user_id = Uuid::now_v7();
        let key_id = Uuid::now_v7();
        let world_client = db_client(&db).await;
        world_client
            .execute(
                "INSERT INTO users (id, email, webhook_token_digest, webhook_token_prefix) VALUES ($1, 'ann@example.com', $2, 'hbx_u_ab')",
                &[&user_id, &vec![1u8; 32]],
            )
            .await
            .unwrap();
        let pair = sealer
            .seal(
                humbex_shared::api_key_vault::KeyRow { id: key_id, user_id },
                API_KEY,
                API_SECRET,
            )
            .unwrap();
        world_client
            .execute(
                "INSERT INTO api_keys (id, user_id, label, api_key_enc, api_secret_enc, enc_key_id, api_key_masked) \
                 VALUES ($1, $2, 'main', $3, $4, 1, 'LEAK…1234')",
                &[&key_id, &user_id, &pair.key_enc, &pair.secret_enc],
            )
            .await
            .unwrap();
        let secret = humbex_shared::notify::generate_webhook_secret();
        use secrecy::ExposeSecret;
        let user_webhook_secret = secret.expose_secret().to_owned();
        let sealed = sealer.seal_webhook_secret(user_id, &user_webhook_secret).unwrap();
        let events: Vec<String> = humbex_shared::notify::Event::ALL
            .iter()
            .map(|e| e.as_str().to_owned())
            .collect();
        world_client
            .query_one(
                sql::PUT_SETTINGS,
                &[
                    &user_id,
                    &Some(USER_CHAT),
                    &Some(format!("{}/user-hook", stand_in.base)),
                    &Some(sealed),
                    &Some("ann@example.com"),
                    &events,
                ],
            )
            .await
            .unwrap();
        World {
            db,
            stand_in,
            smtp,
            opener,
            user_id,
            key_id,
            user_webhook_secret,
        }
    }

    pub fn config(&self) -> NotifyConfig {
        NotifyConfig {
            telegram: Some(TelegramConfig {
                bot_token: BOT_TOKEN.to_owned().into(),
                api_url: self.stand_in.base.clone(),
            }),
            smtp: Some(smtp_config(&format!("smtp://127.0.0.1:{}", self.smtp.port), None)),
            ops: OpsDestinations {
                telegram_chat_id: Some(OPS_CHAT.into()),
                webhook: Some((
                    format!("{}/ops-hook", self.stand_in.base),
                    WebhookSecret::parse(OPS_SECRET).unwrap(),
                )),
                email: Some("ops@example.com".into()),
            },
        }
    }

    pub fn settings(&self) -> NotifierSettings {
        NotifierSettings {
            poll_interval: Duration::from_millis(50),
            lease: Duration::from_secs(2),
            send_timeout: Duration::from_secs(2),
            backoff_base: Duration::from_millis(100),
            egress_ips: "203.0.113.7".into(),
            ..NotifierSettings::default()
        }
    }

    pub fn notifier(&self, settings: NotifierSettings) -> Arc<Notifier> {
        let pool = humbex_shared::db::pool(&self.db.url, 8).expect("pool");
        Arc::new(Notifier::new(pool, self.opener.clone(), self.config(), settings).expect("notifier"))
    }

    /// Run a notifier in a task; abort the handle to kill it mid-send.
    pub fn spawn(&self, settings: NotifierSettings) -> tokio::task::JoinHandle<()> {
        let notifier = self.notifier(settings);
        tokio::spawn(notifier.run_until(std::future::pending()))
    }

    pub async fn db(&self) -> tokio_postgres::Client {
        db_client(&self.db).await
    }

    /// A signal and an order of this user, `pending`; returns (signal id, order id).
    pub async fn order(&self, db: &tokio_postgres::Client) -> (Uuid, Uuid) {
        let signal_id = Uuid::now_v7();
        let order_id = Uuid::now_v7();
        db.execute(
            "INSERT INTO signals (id, source, user_id, action, symbol, quantity, raw_body, idempotency_key, status) \
             VALUES ($1, 'signed', $2, 'buy', 'AVAXUSDT', 1, '{}', $3, 'processing')",
            &[&signal_id, &self.user_id, &signal_id.to_string()],
        )
        .await
        .unwrap();
        db.execute(
            "INSERT INTO orders (id, signal_id, user_id, api_key_id, order_link_id, symbol, side, qty) \
             VALUES ($1, $2, $3, $4, $5, 'AVAXUSDT', 'buy', 1.5)",
            &[
                &order_id,
                &signal_id,
                &self.user_id,
                &self.key_id,
                &format!("hbx-{}", &order_id.simple().to_string()[..30]),
            ],
        )
        .await
        .unwrap();
        (signal_id, order_id)
    }

    /// One filled order of this user (so one notification, to each of the user's channels); the
    /// notification's id.
    pub async fn fill_one(&self) -> Uuid {
        let db = self.db().await;
        let (_, order) = self.order(&db).await;
        db.execute(
            "UPDATE orders SET status = 'filled', filled_qty = 1.5, avg_price = 20, fee = 0.01 WHERE id = $1",
            &[&order],
        )
        .await
        .unwrap();
        db.query_one(
            "SELECT id FROM notifications WHERE data ->> 'order_id' = $1",
            &[&order.to_string()],
        )
        .await
        .unwrap()
        .get("id")
    }

    /// Run a sender with `config` and `opener` until the user's delivery on `channel` has `n`
    /// attempts; the attempts (outcome, detail), oldest first.
    pub async fn run_until_attempts(
        &self,
        opener: Opener,
        config: NotifyConfig,
        channel: &str,
        n: usize,
    ) -> Vec<(String, Option<String>)> {
        let pool = humbex_shared::db::pool(&self.db.url, 4).expect("pool");
        let notifier = Arc::new(Notifier::new(pool, opener, config, self.settings()).expect("notifier"));
        let task = tokio::spawn(notifier.run_until(std::future::pending()));
        let done = wait_for(Duration::from_secs(30), || async {
            let a = attempts(self, channel, "user").await;
            (a.len() >= n).then_some(a)
        })
        .await;
        task.abort();
        let _ = task.await;
        done.unwrap_or_else(|| panic!("no {channel} attempt {n}"))
    }

    /// Deliveries by status.
    pub async fn deliveries(&self) -> HashMap<String, i64> {
        let db = self.db().await;
        db.query(
            "SELECT status, count(*) AS n FROM notification_deliveries GROUP BY status",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("status"), r.get("n")))
        .collect()
    }

    /// Wait until no delivery is pending (and at least `at_least` exist).
    pub async fn settled(&self, at_least: i64, limit: Duration) -> HashMap<String, i64> {
        let done = wait_for(limit, || async {
            let d = self.deliveries().await;
            let total: i64 = d.values().sum();
            (total >= at_least && !d.contains_key("pending")).then_some(d)
        })
        .await;
        match done {
            Some(d) => d,
            None => panic!("deliveries not settled: {:?}", self.deliveries().await),
        }
    }
}

/// The text of a mail as aiosmtpd stored it: headers, then the body decoded from quoted-printable
/// or base64, as lettre chose.
pub fn mail_text(raw: &str) -> String {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let lower = head.to_ascii_lowercase();
    let body = if lower.contains("content-transfer-encoding: base64") {
        let joined: String = body.split_whitespace().collect();
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(joined).unwrap()).unwrap()
    } else if lower.contains("content-transfer-encoding: quoted-printable") {
        let soft = body.replace("=\n", "");
        let bytes = soft.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'='
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(&soft[i + 1..i + 3], 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    } else {
        body.to_owned()
    };
    format!("{head}\n\n{body}")
}

/// (outcome, detail) of every attempt on a channel for an audience, oldest first.
pub async fn attempts(w: &World, channel: &str, audience: &str) -> Vec<(String, Option<String>)> {
    w.db()
        .await
        .query(
            "SELECT a.outcome, a.detail FROM notification_attempts a JOIN notification_deliveries d ON d.id = a.delivery_id \
             WHERE d.channel = $1 AND d.audience = $2 ORDER BY a.id",
            &[&channel, &audience],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("outcome"), r.get("detail")))
        .collect()
}

pub async fn db_client(db: &TestDatabase) -> tokio_postgres::Client {
    let (client, conn) = db.url.pg_config().connect().await.unwrap();
    tokio::spawn(conn);
    client
}
