//! 429 with Retry-After: failed authentications per source address, requests per webhook token,
//! new signals per user or strategy. Sources are set with X-Forwarded-For from a trusted proxy.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, Options, TestApp, read, signal};

async fn spawn(env: Vec<(&'static str, String)>) -> TestApp {
    let mut env = env;
    // The test client is the proxy; X-Forwarded-For names the source address.
    env.push(("TRUSTED_PROXIES", "127.0.0.1".into()));
    TestApp::spawn_with(Options {
        env,
        ..Options::default()
    })
    .await
}

/// Status, body and the `Retry-After` header, if any.
async fn with_retry_after(resp: reqwest::Response) -> (u16, Value, Option<String>) {
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = read(resp).await;
    (status, body, retry)
}

async fn admin_from(app: &TestApp, source: &str, token: &str) -> (u16, Value, Option<String>) {
    let resp = app
        .http
        .get(app.url("/admin/users"))
        .header("x-forwarded-for", source)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    with_retry_after(resp).await
}

async fn tradingview_from(app: &TestApp, source: &str, body: &str) -> (u16, Value, Option<String>) {
    let resp = app
        .http
        .post(app.url("/webhook/tradingview"))
        .header("x-forwarded-for", source)
        .header("content-type", "text/plain")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    with_retry_after(resp).await
}

fn assert_rate_limited(status: u16, body: &Value, retry: &Option<String>) {
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "rate_limited", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    let seconds: u64 = retry
        .as_deref()
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!((1..=60).contains(&seconds), "{seconds}");
}

#[tokio::test]
async fn failed_authentications_are_limited_per_source_address() {
    let app = spawn(vec![("RATE_LIMIT_AUTH_FAILURES_PER_MINUTE", "3".into())]).await;
    let attacker = "203.0.113.7";
    for _ in 0..3 {
        let (status, body, _) = admin_from(&app, attacker, "wrong-admin-token-000000").await;
        assert_eq!(status, 401, "{body}");
    }
    // Over budget: refused before the token is even looked at, the right token included.
    let (status, body, retry) = admin_from(&app, attacker, "wrong-admin-token-000000").await;
    assert_rate_limited(status, &body, &retry);
    let (status, body, retry) = admin_from(&app, attacker, ADMIN_TOKEN).await;
    assert_rate_limited(status, &body, &retry);
    let (status, body, retry) = tradingview_from(&app, attacker, &signal("hbxu_nope", json!({}))).await;
    assert_rate_limited(status, &body, &retry);

    // Another address is unaffected.
    let (status, body, _) = admin_from(&app, "203.0.113.8", ADMIN_TOKEN).await;
    assert_eq!(status, 200, "{body}");

    // Webhook signature and token failures count too.
    let other = "198.51.100.9";
    for _ in 0..3 {
        let resp = app
            .http
            .post(app.url("/webhook"))
            .header("x-forwarded-for", other)
            .header("content-type", "application/json")
            .header("x-signature", "00".repeat(32))
            .body(signal("hbxu_nope", json!({})))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401);
    }
    let (status, body, retry) = tradingview_from(&app, other, "{}").await;
    assert_rate_limited(status, &body, &retry);

    let third = "198.51.100.10";
    for _ in 0..3 {
        let (status, body, _) = tradingview_from(&app, third, &signal("hbxu_nope", json!({}))).await;
        assert_eq!(status, 401, "{body}");
    }
    let (status, body, retry) = admin_from(&app, third, ADMIN_TOKEN).await;
    assert_rate_limited(status, &body, &retry);

    // TradingView's own senders carry every user's alerts: never blocked for failures.
    for _ in 0..6 {
        let (status, body, _) =
            tradingview_from(&app, "52.89.214.238", &signal("hbxu_nope", json!({}))).await;
        assert_eq!(status, 401, "{body}");
    }
}

#[tokio::test]
async fn ipv6_sources_are_limited_per_64_and_unreadable_forwarded_for_is_refused() {
    let app = spawn(vec![("RATE_LIMIT_AUTH_FAILURES_PER_MINUTE", "2".into())]).await;
    // Two failures from two addresses of one /64, written the ways proxies write them.
    for source in ["[2001:db8:7:7::1]:443", "2001:db8:7:7::2"] {
        let (status, body, _) = admin_from(&app, source, "wrong-admin-token-000000").await;
        assert_eq!(status, 401, "{body}");
    }
    // A third address of that /64 has no budget left; the next /64 has its own.
    let (status, body, retry) = admin_from(&app, "[2001:db8:7:7:abcd::3]", ADMIN_TOKEN).await;
    assert_rate_limited(status, &body, &retry);
    let (status, body, _) = admin_from(&app, "2001:db8:7:8::1", ADMIN_TOKEN).await;
    assert_eq!(status, 200, "{body}");
    // A client-written entry left of an unreadable one must not pass for the source: refused.
    for forwarded in [
        "6.6.6.6, unknown",
        "6.6.6.6, 198.51.100.1:port",
        "6.6.6.6, [2001:db8::1",
    ] {
        let (status, body, _) = admin_from(&app, forwarded, ADMIN_TOKEN).await;
        assert_eq!(status, 400, "{forwarded}: {body}");
        assert_eq!(body["error"], "invalid_forwarded_for", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("X-Forwarded-For"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn lookups_of_unknown_tokens_share_one_budget_that_known_tokens_skip() {
    use humbex_shared::token::{TokenKind, WebhookToken};
    let app = spawn(vec![("RATE_LIMIT_UNKNOWN_TOKENS_PER_MINUTE", "3".into())]).await;
    let (_, token) = app.active_user("known@example.com").await;
    let (status, body) = app.tradingview(&signal(&token, json!({ "id": "k0" }))).await;
    assert_eq!(status, 202, "{body}");
    // Well-formed random tokens from many addresses: each costs a lookup, until the budget is spent.
    for n in 0..3 {
        let guess = WebhookToken::generate(TokenKind::User);
        let source = format!("198.51.100.{n}");
        let (status, body, _) =
            tradingview_from(&app, &source, &signal(guess.expose_secret(), json!({}))).await;
        assert_eq!(status, 401, "{body}");
    }
    let guess = WebhookToken::generate(TokenKind::User);
    let (status, body, retry) =
        tradingview_from(&app, "198.51.100.50", &signal(guess.expose_secret(), json!({}))).await;
    assert_rate_limited(status, &body, &retry);
    // A token that has worked before is still served.
    let (status, body) = app.tradingview(&signal(&token, json!({ "id": "k1" }))).await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn requests_are_limited_per_webhook_token() {
    let app = spawn(vec![("RATE_LIMIT_TOKEN_REQUESTS_PER_MINUTE", "2".into())]).await;
    let (_, token) = app.active_user("a@example.com").await;
    let (_, other_token) = app.active_user("b@example.com").await;
    for n in 0..2 {
        let (status, body) = app
            .tradingview(&signal(&token, json!({ "id": format!("t{n}") })))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let (status, body, retry) =
        tradingview_from(&app, "127.0.0.1", &signal(&token, json!({ "id": "t2" }))).await;
    assert_rate_limited(status, &body, &retry);
    assert_eq!(app.count("SELECT count(*) FROM signals").await, 2);
    // Another token has its own budget.
    let (status, body) = app
        .tradingview(&signal(&other_token, json!({ "id": "o1" })))
        .await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn new_signals_are_limited_per_user_and_duplicates_are_free() {
    let app = spawn(vec![("RATE_LIMIT_SIGNALS_PER_MINUTE", "2".into())]).await;
    let (user, token) = app.active_user("a@example.com").await;
    let (status, body) = app.tradingview(&signal(&token, json!({ "id": "s0" }))).await;
    assert_eq!(status, 202, "{body}");
    // A retry of a stored signal places no order, so it costs nothing from the budget.
    let (status, body) = app.tradingview(&signal(&token, json!({ "id": "s0" }))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.tradingview(&signal(&token, json!({ "id": "s1" }))).await;
    assert_eq!(status, 202, "{body}");
    let (status, body, retry) =
        tradingview_from(&app, "127.0.0.1", &signal(&token, json!({ "id": "s2" }))).await;
    assert_rate_limited(status, &body, &retry);

    // The budget belongs to the user, not the token: a rotated token does not reset it.
    let (status, rotated) = app
        .admin(Method::POST, &format!("/admin/users/{user}/token"), None)
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_token = rotated["webhook_token"].as_str().expect("new token").to_owned();
    let (status, body) = app.tradingview(&signal(&new_token, json!({ "id": "s3" }))).await;
    // The first signal with a new token teaches the limiter its owner (one signal of slack).
    assert_eq!(status, 202, "{body}");
    let (status, body, retry) =
        tradingview_from(&app, "127.0.0.1", &signal(&new_token, json!({ "id": "s4" }))).await;
    assert_rate_limited(status, &body, &retry);
    assert_eq!(app.count("SELECT count(*) FROM signals").await, 3);
}
