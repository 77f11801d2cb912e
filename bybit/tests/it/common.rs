use std::time::Duration;

use humbex_bybit::{
    BybitRest, BybitRestConfig, Credentials, PrivateStreamConfig, StreamEvent, ensure_crypto_provider,
};
use humbex_paper_exchange::{PaperExchangeConfig, RunningPaperExchange};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub const SYMBOL: &str = "AVAXUSDT";
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Harness {
    pub paper: RunningPaperExchange,
    pub rest: BybitRest,
    control: reqwest::Client,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(|config| config).await
    }

    pub async fn start_with(adjust: impl FnOnce(BybitRestConfig) -> BybitRestConfig) -> Harness {
        ensure_crypto_provider();
        let paper = humbex_paper_exchange::spawn(PaperExchangeConfig {
            port: 0,
            // Tests do not need pybit's workaround; a short delay still exercises the wait.
            ws_subscribe_ack_delay: Duration::from_millis(5),
            ..Default::default()
        })
        .await
        .expect("paper exchange starts");
        let rest =
            BybitRest::with_config(adjust(BybitRestConfig::new(paper.base_url()))).expect("client builds");
        Harness {
            paper,
            rest,
            control: reqwest::Client::new(),
        }
    }

    /// Creates an account through the control API and returns its credentials.
    pub async fn account(&self, api_key: &str, balance_usdt: &str) -> Credentials {
        self.account_with(json!({"api_key": api_key, "balance_usdt": balance_usdt}))
            .await
    }

    /// `spec` is the POST /paper/accounts body without `api_secret`.
    pub async fn account_with(&self, mut spec: Value) -> Credentials {
        let api_key = spec["api_key"].as_str().expect("api_key").to_string();
        let secret = format!("secret-of-{api_key}");
        spec["api_secret"] = json!(secret);
        self.create("accounts", &spec).await;
        Credentials::new(api_key, SecretString::from(secret))
    }

    pub async fn fault(&self, fault: Value) {
        self.create("faults", &fault).await;
    }

    /// POST `body` to the control API's `/paper/{what}`, which must answer 201 Created.
    async fn create(&self, what: &str, body: &Value) {
        let response = self
            .control
            .post(format!("{}/paper/{what}", self.paper.base_url()))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            201,
            "{}",
            response.text().await.unwrap()
        );
    }

    /// The paper exchange's own record of every order of the account: the witness for "exactly one".
    pub async fn paper_orders(&self, api_key: &str) -> Vec<Value> {
        self.control
            .get(format!(
                "{}/paper/accounts/{api_key}/orders",
                self.paper.base_url()
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn stream_config(&self, credentials: Credentials) -> PrivateStreamConfig {
        PrivateStreamConfig {
            reconnect_initial_delay: Duration::from_millis(50),
            reconnect_max_delay: Duration::from_millis(500),
            auth_failure_delay: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(5),
            ..PrivateStreamConfig::new(self.paper.private_ws_url(), credentials)
        }
    }
}

/// Waits for the first event that `pick` accepts, skipping the others.
pub async fn next_matching<T>(
    events: &mut mpsc::Receiver<StreamEvent>,
    mut pick: impl FnMut(StreamEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.recv().await.expect("stream still running");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
    .expect("event within the timeout")
}
