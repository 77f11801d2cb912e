//! No secret in any log line or Debug output: the whole ingest flow (user, exchange key on an
//! in-process paper exchange, signed and TradingView signals, bad signatures and tokens, admin
//! refusals, a dead database) runs under a capture layer at trace level for our crates, and every
//! captured byte is searched for each secret.

use std::io::Write;
use std::sync::{Arc, Mutex};

use humbex_ingest::webhook::signature::{sign_standard_webhooks, sign_x_signature};
use humbex_shared::token::{TokenKind, WebhookToken};
use reqwest::Method;
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

#[path = "api/harness.rs"]
#[allow(dead_code)]
mod harness;

use crate::harness::{ADMIN_TOKEN, ENCRYPTION_KEY, Options, SECRET, TestApp, read, signal};

const EXCHANGE_KEY: &str = "PAPERKEYLEAKTEST01";
const EXCHANGE_SECRET: &str = "paper-secret-leak-test-0123456789abcdef";

/// Every formatted log line, kept in memory.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Trace for every HUMBEX crate and poem, the rest at info: what RUST_LOG=trace would show of ours.
const FILTER: &str = "info,humbex=trace,humbex_ingest=trace,humbex_shared=trace,humbex_bybit=trace,\
                      humbex_paper_exchange=trace,poem=trace,poem_openapi=trace";

#[tokio::test]
async fn no_secret_reaches_any_log_line() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(FILTER))
        .with_writer(capture.clone())
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .finish();
    // This test has its own binary, so the subscriber can be process-wide. A thread-scoped one, in a
    // binary whose other tests run on other threads without a subscriber, missed events now and then
    // (tracing caches each call site's interest across threads).
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber in this binary");

    let app = TestApp::spawn_with(Options {
        paper_exchange: true,
        ..Options::default()
    })
    .await;
    let (user, token) = app.active_user("leak@example.com").await;
    let (status, key) = app.add_key(&user, EXCHANGE_KEY, EXCHANGE_SECRET).await;
    assert_eq!(status, 201, "{key}");
    let (status, keys) = app
        .admin(Method::GET, &format!("/admin/users/{user}/api-keys"), None)
        .await;
    assert_eq!(status, 200, "{keys}");
    assert!(!keys.to_string().contains(EXCHANGE_KEY) && !keys.to_string().contains(EXCHANGE_SECRET));

    // Signed with X-Signature, signed with Standard Webhooks, and TradingView's token-only route.
    let mut secrets: Vec<String> = vec![
        EXCHANGE_KEY.into(),
        EXCHANGE_SECRET.into(),
        token.clone(),
        SECRET.into(),
        ADMIN_TOKEN.into(),
        ENCRYPTION_KEY.into(),
    ];
    let body = signal(&token, json!({ "id": "leak-1" }));
    let x_sig = sign_x_signature(SECRET.as_bytes(), body.as_bytes());
    let (status, answer) = app.signed(&body).await;
    assert_eq!(status, 202, "{answer}");
    secrets.push(x_sig);

    let sw_key = humbex_shared::config::WebhookSecret::parse(SECRET).unwrap();
    let sw_body = signal(&token, json!({}));
    let at = chrono::Utc::now().timestamp();
    let sw_sig = sign_standard_webhooks(sw_key.standard_webhooks_key(), "evt_leak", at, sw_body.as_bytes());
    let resp = app
        .http
        .post(app.url("/webhook"))
        .header("content-type", "application/json")
        .header("webhook-id", "evt_leak")
        .header("webhook-timestamp", at.to_string())
        .header("webhook-signature", &sw_sig)
        .body(sw_body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    // The MAC itself, without its `v1,` label.
    secrets.push(sw_sig.trim_start_matches("v1,").to_owned());

    let (status, answer) = app.tradingview(&signal(&token, json!({ "id": "leak-2" }))).await;
    assert_eq!(status, 202, "{answer}");
    let (status, _) = app.tradingview(&signal(&token, json!({ "id": "leak-2" }))).await;
    assert_eq!(status, 200);

    // Induced errors: a wrong signature, an unknown (well-formed) token, a user token as admin
    // bearer, a near-miss admin token, a token in the query string.
    let wrong_sig = sign_x_signature(b"not-the-secret", body.as_bytes());
    let resp = app
        .http
        .post(app.url("/webhook"))
        .header("content-type", "application/json")
        .header("x-signature", &wrong_sig)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let unknown = WebhookToken::generate(TokenKind::User).expose_secret().to_owned();
    let (status, _) = app.tradingview(&signal(&unknown, json!({}))).await;
    assert_eq!(status, 401);
    secrets.push(unknown.clone());
    let near_admin = format!("{}x", &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1]);
    for bearer in [token.as_str(), near_admin.as_str()] {
        let resp = app
            .http
            .get(app.url("/admin/users"))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401);
    }
    secrets.push(near_admin);
    let resp = app
        .http
        .post(app.url(&format!("/webhook/tradingview?token={token}")))
        .header("content-type", "text/plain")
        .body(r#"{"action":"buy","symbol":"AVAXUSDT","quantity":"1"}"#)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error());

    // An induced panic in a request that carries the admin token and an exchange key and secret:
    // the client gets the JSON 500, and the panic is reported once, through the same tracing
    // hook as `humbex` installs (instead of the default hook's stderr), with no secret in either.
    let default_hook = std::panic::take_hook();
    humbex_shared::hardening::install_panic_hook();
    let resp = app
        .http
        .post(app.url("/__test/panic"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(json!({ "api_key": EXCHANGE_KEY, "api_secret": EXCHANGE_SECRET, "token": token }).to_string())
        .send()
        .await
        .unwrap();
    std::panic::set_hook(default_hook);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json; charset=utf-8"
    );
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let (status, answer) = read(resp).await;
    assert_eq!(status, 500, "{answer}");
    assert_eq!(answer["error"], "internal_error", "{answer}");
    assert!(!answer.to_string().contains("induced"), "{answer}");
    for secret in [EXCHANGE_KEY, EXCHANGE_SECRET, token.as_str(), ADMIN_TOKEN] {
        assert!(!answer.to_string().contains(secret));
    }

    // The database down: the same signal and an admin call, each a 503 with its reason logged.
    let dead = TestApp::spawn_with(Options {
        dead_database: true,
        ..Options::default()
    })
    .await;
    let (status, _) = dead.tradingview(&signal(&token, json!({ "id": "leak-3" }))).await;
    assert_eq!(status, 503);
    let (status, _) = dead.signed(&signal(&token, json!({ "id": "leak-4" }))).await;
    assert_eq!(status, 503);
    let (status, _) = dead.add_key(&user, EXCHANGE_KEY, EXCHANGE_SECRET).await;
    assert!(status >= 400);
    let (status, answer) = read(
        dead.http
            .get(dead.url("/admin/users"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 503, "{answer}");
    drop(dead);
    drop(app);

    let logged = capture.text();
    // The capture really saw the flow, at trace level, including the failures.
    assert!(logged.lines().count() > 50, "too little captured:\n{logged}");
    for expected in [
        "webhook signature refused",
        "status=401",
        "status=503",
        "status=202",
        "status=500",
        "a thread panicked",
        "induced panic (test hook)",
        "a request handler panicked",
    ] {
        assert!(logged.contains(expected), "{expected:?} not captured");
    }
    for secret in &secrets {
        assert!(secret.len() >= 16, "a short needle would prove nothing: {secret}");
        if let Some(line) = logged.lines().find(|l| l.contains(secret.as_str())) {
            panic!("a secret reached the log: {line}");
        }
    }
}

#[test]
fn debug_of_every_secret_holding_type_is_redacted() {
    use humbex_shared::config::{Config, WebhookSecret};
    use humbex_shared::secrecy::SecretString;

    let vars = std::collections::HashMap::from([
        ("TRADINGVIEW_SECRET", SECRET.to_owned()),
        ("ENCRYPTION_KEY_HEX", ENCRYPTION_KEY.to_owned()),
        ("ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        (
            "DATABASE_URL",
            "postgres://app:db-password-0123456789@127.0.0.1/humbex".to_owned(),
        ),
    ]);
    let config = Config::from_lookup(&|n| vars.get(n).cloned()).unwrap();
    let token = WebhookToken::generate(TokenKind::User);
    let shown = [
        format!("{config:?}"),
        format!("{:?}", config.secrets.sealer),
        format!("{:?}", config.secrets.opener),
        format!("{:?}", WebhookSecret::parse(SECRET).unwrap()),
        format!("{token:?}"),
        format!(
            "{:?}",
            humbex_bybit::Credentials::new(EXCHANGE_KEY, SecretString::from(EXCHANGE_SECRET))
        ),
        format!(
            "{:?}",
            humbex_paper_exchange::AccountSpec::new(
                EXCHANGE_KEY,
                EXCHANGE_SECRET,
                rust_decimal::Decimal::from(100)
            )
        ),
        format!(
            "{:?}",
            humbex_ingest::admin::models::ApiKeyCreate {
                api_key: EXCHANGE_KEY.into(),
                api_secret: EXCHANGE_SECRET.into(),
                label: None,
            }
        ),
    ];
    for text in &shown {
        for secret in [
            SECRET,
            ENCRYPTION_KEY,
            ADMIN_TOKEN,
            "db-password-0123456789",
            token.expose_secret(),
            EXCHANGE_KEY,
            EXCHANGE_SECRET,
        ] {
            assert!(!text.contains(secret), "{secret:?} shown in {text}");
        }
        assert!(
            text.contains("REDACTED") || text.contains("redacted") || text.contains("****"),
            "nothing marked as redacted in {text}"
        );
    }
}
