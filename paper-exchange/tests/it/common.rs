//! Test harness: a paper exchange on 127.0.0.1:0, signed Bybit requests, and a WebSocket client.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use humbex_paper_exchange::signing::{sign_rest, sign_ws_auth};
use humbex_paper_exchange::{PaperExchangeConfig, RunningPaperExchange, spawn};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single awaited event may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub struct Harness {
    pub running: RunningPaperExchange,
    pub http: reqwest::Client,
    pub base: String,
}

pub async fn start() -> Harness {
    start_with(test_config()).await
}

pub fn test_config() -> PaperExchangeConfig {
    PaperExchangeConfig {
        port: 0,
        ws_subscribe_ack_delay: Duration::from_millis(10),
        ..PaperExchangeConfig::default()
    }
}

pub async fn start_with(config: PaperExchangeConfig) -> Harness {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let running = spawn(config).await.expect("paper exchange starts");
    let http = reqwest::Client::builder().build().expect("client builds");
    let base = running.base_url();
    Harness { running, http, base }
}

impl Harness {
    pub async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = tokio::time::timeout(WAIT, request.send())
            .await
            .expect("control in time")
            .expect("control");
        let status = response.status().as_u16();
        let text = response.text().await.expect("control body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Creates an account with extra fields merged into the default request.
    pub async fn account_with(&self, extra: Value) -> Account {
        let key = format!("key{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let secret = format!("secret{}", uuid::Uuid::new_v4().simple());
        let mut body = json!({"api_key": key, "api_secret": secret});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            body[k] = v;
        }
        let (status, view) = self
            .control(reqwest::Method::POST, "/paper/accounts", Some(body))
            .await;
        assert_eq!(status, 201, "{view}");
        Account {
            key,
            secret,
            base: self.base.clone(),
            http: self.http.clone(),
        }
    }

    pub async fn account(&self) -> Account {
        self.account_with(json!({})).await
    }

    pub async fn set_price(&self, symbol: &str, price: &str) {
        let (status, body) = self
            .control(
                reqwest::Method::PUT,
                &format!("/paper/prices/{symbol}"),
                Some(json!({"price": price})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// `PUT /paper/prices/{symbol}` with a partial-fill cap for the resting orders it crosses.
    pub async fn set_price_partial(&self, symbol: &str, price: &str, max_fill_qty: &str) {
        let (status, body) = self
            .control(
                reqwest::Method::PUT,
                &format!("/paper/prices/{symbol}"),
                Some(json!({"price": price, "max_fill_qty": max_fill_qty})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// The exchange's own record of an account: `orders`, `executions` or `positions`.
    pub async fn record(&self, account: &Account, what: &str) -> Vec<Value> {
        let (status, body) = self
            .control(
                reqwest::Method::GET,
                &format!("/paper/accounts/{}/{what}", account.key),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body.as_array().expect("a list").clone()
    }

    pub async fn fault(&self, fault: Value) -> Value {
        let (status, body) = self
            .control(reqwest::Method::POST, "/paper/faults", Some(fault))
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub fn ws_url(&self) -> String {
        self.running.private_ws_url()
    }
}

#[derive(Clone)]
pub struct Account {
    pub key: String,
    pub secret: String,
    pub base: String,
    pub http: reqwest::Client,
}

/// How to (mis)sign a request.
#[derive(Clone)]
pub struct Signing {
    pub timestamp_offset_ms: i64,
    pub recv_window: &'static str,
    pub wrong_secret: bool,
}

impl Default for Signing {
    fn default() -> Self {
        Signing {
            timestamp_offset_ms: 0,
            recv_window: "5000",
            wrong_secret: false,
        }
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn ret_code(&self) -> i64 {
        self.body["retCode"].as_i64().unwrap_or(-999)
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

impl Account {
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        payload: &str,
        signing: Signing,
    ) -> Reply {
        self.request_with_timeout(method, path, payload, signing, WAIT)
            .await
            .expect("request in time")
    }

    pub async fn request_with_timeout(
        &self,
        method: reqwest::Method,
        path: &str,
        payload: &str,
        signing: Signing,
        timeout: Duration,
    ) -> Result<Reply, reqwest::Error> {
        let timestamp = (now_ms() + signing.timestamp_offset_ms).to_string();
        let secret = if signing.wrong_secret {
            "not-the-secret"
        } else {
            self.secret.as_str()
        };
        let sign = sign_rest(secret, &timestamp, &self.key, signing.recv_window, payload);
        let is_get = method == reqwest::Method::GET;
        let url = if is_get && !payload.is_empty() {
            format!("{}{path}?{payload}", self.base)
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = self
            .http
            .request(method, url)
            .timeout(timeout)
            .header("X-BAPI-API-KEY", &self.key)
            .header("X-BAPI-TIMESTAMP", &timestamp)
            .header("X-BAPI-RECV-WINDOW", signing.recv_window)
            .header("X-BAPI-SIGN", sign);
        if !is_get {
            request = request
                .header("Content-Type", "application/json")
                .body(payload.to_string());
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        Ok(Reply {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        })
    }

    pub async fn get(&self, path: &str, query: &str) -> Reply {
        self.request(reqwest::Method::GET, path, query, Signing::default())
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.request(reqwest::Method::POST, path, &body.to_string(), Signing::default())
            .await
    }

    pub async fn create(&self, order: Value) -> Reply {
        let mut body = json!({"category": "linear", "symbol": "AVAXUSDT"});
        for (k, v) in order.as_object().cloned().unwrap_or_default() {
            body[k] = v;
        }
        self.post("/v5/order/create", body).await
    }

    pub async fn market(&self, side: &str, qty: &str, link: &str) -> Reply {
        self.create(json!({"side": side, "orderType": "Market", "qty": qty, "orderLinkId": link}))
            .await
    }

    pub async fn position(&self, symbol: &str) -> Value {
        let reply = self
            .get("/v5/position/list", &format!("category=linear&symbol={symbol}"))
            .await;
        assert_eq!(reply.ret_code(), 0, "{}", reply.body);
        reply.body["result"]["list"][0].clone()
    }

    pub async fn order_by_link(&self, link: &str) -> Value {
        let reply = self
            .get(
                "/v5/order/realtime",
                &format!("category=linear&orderLinkId={link}"),
            )
            .await;
        assert_eq!(reply.ret_code(), 0, "{}", reply.body);
        reply.body["result"]["list"][0].clone()
    }

    pub async fn wallet(&self) -> Value {
        let reply = self
            .get("/v5/account/wallet-balance", "accountType=UNIFIED")
            .await;
        assert_eq!(reply.ret_code(), 0, "{}", reply.body);
        reply.body["result"]["list"][0].clone()
    }
}

pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn connect(url: &str) -> Ws {
        let (stream, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("ws in time")
            .expect("ws");
        Ws { stream }
    }

    pub async fn send(&mut self, value: Value) {
        self.stream
            .send(Message::text(value.to_string()))
            .await
            .expect("ws send");
    }

    /// Sends a protocol-level ping and waits for its pong frame.
    pub async fn protocol_ping(&mut self, payload: &'static [u8]) -> Vec<u8> {
        self.stream
            .send(Message::Ping(payload.into()))
            .await
            .expect("ws ping");
        tokio::time::timeout(WAIT, async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Pong(data))) => return data.to_vec(),
                    Some(Ok(_)) => continue,
                    other => panic!("connection ended before the pong: {other:?}"),
                }
            }
        })
        .await
        .expect("pong in time")
    }

    /// The next JSON text frame, or None if the connection ended.
    pub async fn next_json_within(
        &mut self,
        limit: Duration,
    ) -> Result<Option<Value>, tokio::time::error::Elapsed> {
        tokio::time::timeout(limit, async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Text(text))) => {
                        return Some(serde_json::from_str(text.as_str()).expect("json"));
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                    Some(Ok(_)) => continue,
                }
            }
        })
        .await
    }

    pub async fn next_json(&mut self) -> Value {
        self.next_json_within(WAIT)
            .await
            .expect("ws message in time")
            .expect("ws still open")
    }

    /// Skips frames until one matches.
    pub async fn wait_for(&mut self, what: &str, mut matches: impl FnMut(&Value) -> bool) -> Value {
        tokio::time::timeout(WAIT, async {
            loop {
                let value = self
                    .next_json_within(WAIT)
                    .await
                    .expect("in time")
                    .expect("ws still open");
                if matches(&value) {
                    return value;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    pub async fn auth(&mut self, key: &str, secret: &str) -> Value {
        let expires = now_ms() + 10_000;
        self.send(
            json!({"req_id": "auth-1", "op": "auth", "args": [key, expires, sign_ws_auth(secret, expires)]}),
        )
        .await;
        self.wait_for("auth reply", |v| v["op"] == "auth").await
    }

    pub async fn auth_and_subscribe(&mut self, account: &Account, topics: &[&str]) {
        let auth = self.auth(&account.key, &account.secret).await;
        assert_eq!(auth["success"], true, "{auth}");
        self.send(json!({"req_id": "sub-1", "op": "subscribe", "args": topics}))
            .await;
        let ack = self.wait_for("subscribe ack", |v| v["op"] == "subscribe").await;
        assert_eq!(ack["success"], true, "{ack}");
    }

    /// Waits until the server ends the connection.
    pub async fn expect_closed(&mut self) {
        tokio::time::timeout(WAIT, async {
            while let Some(Ok(_)) = self.stream.next().await {}
        })
        .await
        .expect("connection closed in time");
    }
}

pub fn topic_item<'a>(message: &'a Value, topic: &str) -> Option<&'a Value> {
    (message["topic"] == topic).then(|| &message["data"][0])
}
