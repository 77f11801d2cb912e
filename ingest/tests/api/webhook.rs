//! POST /webhook and /webhook/tradingview: authentication, idempotency, subscriptions.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeZone;
use humbex_ingest::webhook::signature::{sign_standard_webhooks, sign_x_signature};
use reqwest::Method;
use serde_json::json;

use crate::harness::{Options, SECRET, TestApp, read, signal};

/// docs/api.md's recipe: `openssl dgst -sha256 -hmac "$TRADINGVIEW_SECRET"` over the exact body.
fn openssl_signature(secret: &str, body: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl is installed");
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().last().unwrap().to_owned()
}

#[tokio::test]
async fn openssl_signed_signal_is_stored_and_answered_202() {
    let app = TestApp::spawn().await;
    let (user_id, token) = app.active_user("a@example.com").await;
    let body = signal(&token, json!({ "id": "alert-1", "price": 31.25 }));
    let resp = app
        .http
        .post(app.url("/webhook"))
        .header("content-type", "application/json")
        .header("x-signature", openssl_signature(SECRET, &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let (status, answer) = read(resp).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["duplicate"], false);
    assert_eq!(answer["status"], "received");
    let id: uuid::Uuid = answer["signal_id"].as_str().unwrap().parse().unwrap();

    let db = app.db().await;
    let row = db
        .query_one(
            "SELECT source, user_id::text AS user_id, action, symbol, quantity::text AS quantity, price::text AS price, \
                    client_id, raw_body, status \
             FROM signals WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>("source"), "signed");
    assert_eq!(row.get::<_, String>("user_id"), user_id);
    assert_eq!(row.get::<_, String>("action"), "buy");
    assert_eq!(row.get::<_, String>("symbol"), "AVAXUSDT");
    assert_eq!(row.get::<_, String>("quantity"), "1.50000000");
    assert_eq!(row.get::<_, String>("price"), "31.25000000");
    assert_eq!(row.get::<_, String>("client_id"), "alert-1");
    let raw: String = row.get("raw_body");
    assert!(!raw.contains(&token), "the stored body must not hold the token");
    assert!(raw.contains("[redacted]") && raw.contains("alert-1"));
    assert_eq!(row.get::<_, String>(8), "received");
}

#[tokio::test]
async fn bad_signatures_are_refused_before_any_database_work() {
    // No database listens here: any query would turn into a 503, so a 401 proves none was made.
    let app = TestApp::spawn_with(Options {
        dead_database: true,
        ..Options::default()
    })
    .await;
    let body = signal("hbxu_whatever", json!({}));
    let reserialised =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&body).unwrap()).unwrap();
    let good_sig = sign_x_signature(SECRET.as_bytes(), body.as_bytes());
    let cases: Vec<(Option<String>, String)> = vec![
        (None, body.clone()),
        (Some("".into()), body.clone()),
        (Some("zz".into()), body.clone()),
        (Some(good_sig[..32].to_owned()), body.clone()),
        (
            Some(sign_x_signature(b"another secret", body.as_bytes())),
            body.clone(),
        ),
        (Some(good_sig.clone()), reserialised),
        (Some(good_sig.clone()), format!("{body} ")),
    ];
    for (sig, body) in cases {
        let mut req = app
            .http
            .post(app.url("/webhook"))
            .header("content-type", "application/json");
        if let Some(sig) = &sig {
            req = req.header("x-signature", sig);
        }
        let (status, answer) = read(req.body(body).send().await.unwrap()).await;
        assert_eq!(status, 401, "{sig:?}: {answer}");
        assert_eq!(answer["error"], "invalid_signature");
    }
    // A malformed token with a valid signature is refused from its checksum alone: still no query.
    let (status, answer) = app
        .signed(&signal("hbxu_0000000000000000000000000000000000", json!({})))
        .await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["error"], "invalid_token");
    let (status, _) = app.tradingview(&signal("not-a-token", json!({}))).await;
    assert_eq!(status, 401);
    let (status, _) = app
        .tradingview(r#"{"action":"buy","symbol":"AVAXUSDT","quantity":1}"#)
        .await;
    assert_eq!(status, 401, "a token only in the query string does not count");
}

#[tokio::test]
async fn database_down_answers_503_fast_and_never_2xx() {
    let app = TestApp::spawn_with(Options {
        dead_database: true,
        ..Options::default()
    })
    .await;
    let token = humbex_shared::token::WebhookToken::generate(humbex_shared::token::TokenKind::User);
    let started = Instant::now();
    let (status, answer) = app.signed(&signal(token.expose_secret(), json!({}))).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"], "database_unavailable");
    assert!(
        started.elapsed() < Duration::from_millis(2900),
        "answered after {:?}",
        started.elapsed()
    );
    let (status, _) = read(app.http.get(app.url("/ready")).send().await.unwrap()).await;
    assert_eq!(status, 503);
    let (status, _) = read(app.http.get(app.url("/health")).send().await.unwrap()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn database_that_hangs_still_gets_a_503_inside_three_seconds() {
    // A "server" that accepts connections and never says a word: every wait must be bounded.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let app = TestApp::spawn_with(Options {
        database_url: Some(format!("postgres://postgres@127.0.0.1:{port}/hang")),
        ..Options::default()
    })
    .await;
    let token = humbex_shared::token::WebhookToken::generate(humbex_shared::token::TokenKind::User);
    let body = signal(token.expose_secret(), json!({}));
    let started = Instant::now();
    let answers = futures_util::future::join_all((0..4).map(|_| app.signed(&body))).await;
    for (status, answer) in answers {
        assert_eq!(status, 503, "{answer}");
    }
    assert!(
        started.elapsed() < Duration::from_millis(2900),
        "answered after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn standard_webhooks_vectors_and_webhook_id_idempotency() {
    // SW-2 of docs/security.md#webhook-signatures at its own timestamp: the signature passes (the
    // body is then refused as a signal, 400, not 401), and the vector with its last character
    // changed fails (401).
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let at = 1_614_265_330;
    let app = TestApp::spawn_with(Options {
        env: vec![("TRADINGVIEW_SECRET", secret.into())],
        clock: Some(Arc::new(move || chrono::Utc.timestamp_opt(at, 0).unwrap())),
        ..Options::default()
    })
    .await;
    let post = |id: &str, ts: i64, sig: String, body: String| {
        app.http
            .post(app.url("/webhook"))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(body)
            .send()
    };
    let vector_body = r#"{"test": 2432232314}"#.to_owned();
    let (status, answer) = read(
        post(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            at,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".into(),
            vector_body.clone(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "signature should pass, body should not: {answer}");
    let (status, _) = read(
        post(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            at,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=".into(),
            vector_body,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 401);

    let (_, token) = app.active_user("sw@example.com").await;
    let key = humbex_shared::config::WebhookSecret::parse(secret).unwrap();
    let key = key.standard_webhooks_key();
    let body = signal(&token, json!({}));
    let (status, first) = read(
        post(
            "evt_1",
            at,
            sign_standard_webhooks(key, "evt_1", at, body.as_bytes()),
            body.clone(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 202, "{first}");
    // A retry: same webhook-id, a later attempt timestamp, re-signed.
    let later = at + 30;
    let (status, again) = read(
        post(
            "evt_1",
            later,
            sign_standard_webhooks(key, "evt_1", later, body.as_bytes()),
            body.clone(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["signal_id"], first["signal_id"]);
    // Outside ±5 minutes: refused.
    let old = at - 301;
    let (status, _) = read(
        post(
            "evt_2",
            old,
            sign_standard_webhooks(key, "evt_2", old, body.as_bytes()),
            body.clone(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    // A '.' in webhook-id is malformed.
    let (status, answer) = read(
        post(
            "evt.3",
            at,
            sign_standard_webhooks(key, "evt.3", at, body.as_bytes()),
            body,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(app.count("SELECT count(*) FROM signals").await, 1);
}

#[tokio::test]
async fn twenty_identical_requests_in_parallel_store_one_signal() {
    let app = TestApp::spawn().await;
    let (_, token) = app.active_user("p@example.com").await;
    for body in [
        signal(&token, json!({ "id": "same-client-id" })),
        // No client id: the body hash is the key.
        signal(&token, json!({ "timestamp": chrono::Utc::now().to_rfc3339() })),
    ] {
        let answers = futures_util::future::join_all((0..20).map(|_| app.signed(&body))).await;
        let accepted: Vec<_> = answers.iter().filter(|(s, _)| *s == 202).collect();
        let duplicates: Vec<_> = answers.iter().filter(|(s, _)| *s == 200).collect();
        assert_eq!(accepted.len(), 1, "{answers:?}");
        assert_eq!(duplicates.len(), 19, "{answers:?}");
        let id = &accepted[0].1["signal_id"];
        assert!(
            duplicates
                .iter()
                .all(|(_, a)| &a["signal_id"] == id && a["duplicate"] == true)
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM signals").await, 2);
}

#[tokio::test]
async fn tradingview_retries_are_duplicates_inside_the_window_only() {
    let app = TestApp::spawn().await;
    let (_, token) = app.active_user("tv@example.com").await;
    // No timestamp and no id: the body hash is the key for DEDUPE_WINDOW_SECS alone.
    let body = format!(r#"{{"token":"{token}","action":"sell","symbol":"BYBIT:AVAXUSDT.P","quantity":2}}"#);
    // TradingView resends a byte-identical body up to three times after a 5xx.
    let (status, first) = app.tradingview(&body).await;
    assert_eq!(status, 202, "{first}");
    for _ in 0..3 {
        let (status, again) = app.tradingview(&body).await;
        assert_eq!(status, 200);
        assert_eq!(again["signal_id"], first["signal_id"]);
    }
    // Once the first copy is older than DEDUPE_WINDOW_SECS (60), the same body is a new signal.
    age_signals(&app, 61).await;
    let (status, later) = app.tradingview(&body).await;
    assert_eq!(status, 202, "{later}");
    assert_ne!(later["signal_id"], first["signal_id"]);
    assert_eq!(
        app.count("SELECT count(*) FROM signals WHERE source = 'tradingview'")
            .await,
        2
    );
}

/// Make every stored signal look `secs` seconds older to the dedupe window.
async fn age_signals(app: &TestApp, secs: i64) {
    app.db()
        .await
        .execute(
            "UPDATE signals SET received_at = received_at - make_interval(secs => $1)",
            &[&(secs as f64)],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_timestamped_body_is_a_duplicate_for_as_long_as_its_timestamp_is_accepted() {
    // The app's clock is moved by the test; the database's ageing is simulated on received_at.
    let now = Arc::new(std::sync::Mutex::new(chrono::Utc::now()));
    let clock = now.clone();
    let app = TestApp::spawn_with(Options {
        clock: Some(Arc::new(move || *clock.lock().unwrap())),
        ..Options::default()
    })
    .await;
    let (_, token) = app.active_user("replay@example.com").await;
    // Sent early: its timestamp is 290 s ahead of the clock, inside the 300 s tolerance.
    let stamped = *now.lock().unwrap() + chrono::Duration::seconds(290);
    for route in ["signed", "tradingview"] {
        let body = signal(
            &token,
            json!({ "timestamp": stamped.to_rfc3339(), "comment": route }),
        );
        let send = |body: String| {
            let app = &app;
            async move {
                if route == "signed" {
                    app.signed(&body).await
                } else {
                    app.tradingview(&body).await
                }
            }
        };
        let (status, first) = send(body.clone()).await;
        assert_eq!(status, 202, "{first}");
        // 580 s later the timestamp is 290 s behind the clock: still accepted, so still a duplicate.
        age_signals(&app, 580).await;
        *now.lock().unwrap() += chrono::Duration::seconds(580);
        let (status, replay) = send(body.clone()).await;
        assert_eq!(
            status, 200,
            "{route}: a replay inside the timestamp tolerance is a duplicate: {replay}"
        );
        assert_eq!(replay["signal_id"], first["signal_id"]);
        // Past the tolerance the copy is refused as stale, never stored.
        *now.lock().unwrap() += chrono::Duration::seconds(20);
        let (status, late) = send(body).await;
        assert_eq!(status, 400, "{late}");
        *now.lock().unwrap() -= chrono::Duration::seconds(600);
    }
    assert_eq!(app.count("SELECT count(*) FROM signals").await, 2);
}

#[tokio::test]
async fn subscriptions_decide_who_may_trade() {
    let app = TestApp::spawn().await;
    let (status, user) = app
        .admin(
            Method::POST,
            "/admin/users",
            Some(json!({ "email": "s@example.com" })),
        )
        .await;
    assert_eq!(status, 201);
    let id = user["id"].as_str().unwrap();
    let token = user["webhook_token"].as_str().unwrap();

    // No subscription yet.
    let (status, answer) = app.signed(&signal(token, json!({ "id": "1" }))).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"], "subscription_inactive");
    assert!(answer["message"].as_str().unwrap().contains("no subscription"));

    // Active but expired.
    let (status, _) = app
        .admin(
            Method::PUT,
            &format!("/admin/users/{id}/subscription"),
            Some(json!({ "status": "active", "expires_at": "2020-01-01T00:00:00Z" })),
        )
        .await;
    assert_eq!(status, 200);
    let (status, answer) = app.signed(&signal(token, json!({ "id": "1" }))).await;
    assert_eq!(status, 403);
    assert!(
        answer["message"].as_str().unwrap().contains("expired"),
        "{answer}"
    );

    // Refused signals are kept, as rejected, for the audit trail, and do not block a later resend.
    assert_eq!(
        app.count("SELECT count(*) FROM signals WHERE status = 'rejected' AND reject_reason IS NOT NULL")
            .await,
        2
    );
    let (status, _) = app
        .admin(
            Method::PUT,
            &format!("/admin/users/{id}/subscription"),
            Some(json!({ "status": "active" })),
        )
        .await;
    assert_eq!(status, 200);
    let (status, answer) = app.signed(&signal(token, json!({ "id": "1" }))).await;
    assert_eq!(status, 202, "{answer}");
}

#[tokio::test]
async fn token_rotation_stops_the_old_token_at_once() {
    let app = TestApp::spawn().await;
    let (id, old) = app.active_user("r@example.com").await;
    let (status, _) = app.signed(&signal(&old, json!({ "id": "before" }))).await;
    assert_eq!(status, 202);
    let (status, rotated) = app
        .admin(Method::POST, &format!("/admin/users/{id}/token"), None)
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["webhook_token"].as_str().unwrap();
    assert_ne!(new, old);
    let (status, answer) = app.signed(&signal(&old, json!({ "id": "after" }))).await;
    assert_eq!(status, 401, "{answer}");
    let (status, _) = app.signed(&signal(new, json!({ "id": "after" }))).await;
    assert_eq!(status, 202);
    // The database holds digests, never the token text.
    let db = app.db().await;
    let leaked: i64 = db
        .query_one(
            "SELECT count(*) AS n FROM users WHERE webhook_token_prefix = $1 OR encode(webhook_token_digest, 'escape') LIKE '%' || $1 || '%'",
            &[&new],
        )
        .await
        .unwrap()
        .get("n");
    assert_eq!(leaked, 0);
}

#[tokio::test]
async fn strategy_tokens_store_a_fan_out_signal() {
    let app = TestApp::spawn().await;
    let (status, strategy) = app
        .admin(
            Method::POST,
            "/admin/strategies",
            Some(json!({ "name": "trend" })),
        )
        .await;
    assert_eq!(status, 201, "{strategy}");
    let token = strategy["webhook_token"].as_str().unwrap();
    assert!(token.starts_with("hbxs_"));
    let (status, answer) = app.tradingview(&signal(token, json!({}))).await;
    assert_eq!(status, 202, "{answer}");
    let sid = strategy["id"].as_str().unwrap();
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM signals WHERE strategy_id = '{sid}' AND user_id IS NULL"
        ))
        .await,
        1
    );
    let (status, _) = app
        .admin(
            Method::POST,
            "/admin/strategies",
            Some(json!({ "name": "trend" })),
        )
        .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn stale_signals_are_refused_as_replays() {
    let app = TestApp::spawn().await;
    let (_, token) = app.active_user("st@example.com").await;
    let old = (chrono::Utc::now() - chrono::Duration::minutes(6)).to_rfc3339();
    let (status, answer) = app.signed(&signal(&token, json!({ "timestamp": old }))).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "stale_signal");
    let ahead = (chrono::Utc::now().timestamp_millis() + 6 * 60 * 1000).to_string();
    let (status, _) = app.signed(&signal(&token, json!({ "timestamp": ahead }))).await;
    assert_eq!(status, 400);
    let fresh = chrono::Utc::now().timestamp();
    let (status, _) = app.signed(&signal(&token, json!({ "timestamp": fresh }))).await;
    assert_eq!(status, 202);
    assert_eq!(app.count("SELECT count(*) FROM signals").await, 1);
}

#[tokio::test]
async fn tradingview_ip_allowlist_and_trusted_proxies() {
    let app = TestApp::spawn_with(Options {
        env: vec![("TRADINGVIEW_IP_ALLOWLIST", "on".into())],
        ..Options::default()
    })
    .await;
    let (_, token) = app.active_user("ip@example.com").await;
    let (status, answer) = app.tradingview(&signal(&token, json!({}))).await;
    assert_eq!(status, 403, "127.0.0.1 is not TradingView: {answer}");
    assert_eq!(answer["error"], "source_not_allowed");
    // X-Forwarded-For is ignored unless the peer is a trusted proxy.
    let resp = app
        .http
        .post(app.url("/webhook/tradingview"))
        .header("x-forwarded-for", "52.89.214.238")
        .header("content-type", "text/plain")
        .body(signal(&token, json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);

    let proxied = TestApp::spawn_with(Options {
        env: vec![
            ("TRADINGVIEW_IP_ALLOWLIST", "on".into()),
            ("TRUSTED_PROXIES", "127.0.0.1".into()),
        ],
        ..Options::default()
    })
    .await;
    let (_, token) = proxied.active_user("ip2@example.com").await;
    let resp = proxied
        .http
        .post(proxied.url("/webhook/tradingview"))
        .header("x-forwarded-for", "52.89.214.238")
        .header("content-type", "text/plain")
        .body(signal(&token, json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
}

#[tokio::test]
async fn signing_secret_rotation_overlaps_then_the_old_secret_stops() {
    let old_secret = "the-old-tradingview-secret-000";
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    let clock_offset = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let offset = clock_offset.clone();
    let app = TestApp::spawn_with(Options {
        env: vec![
            ("TRADINGVIEW_SECRET_PREVIOUS", old_secret.into()),
            ("TRADINGVIEW_SECRET_PREVIOUS_UNTIL", until.to_rfc3339()),
        ],
        clock: Some(Arc::new(move || {
            chrono::Utc::now() + chrono::Duration::seconds(offset.load(std::sync::atomic::Ordering::SeqCst))
        })),
        ..Options::default()
    })
    .await;
    let (_, token) = app.active_user("rotate@example.com").await;
    let post_signed_with = |secret: &'static str, id: &'static str| {
        let body = signal(&token, json!({ "id": id }));
        let sig = sign_x_signature(secret.as_bytes(), body.as_bytes());
        let request = app
            .http
            .post(app.url("/webhook"))
            .header("content-type", "application/json")
            .header("x-signature", sig)
            .body(body);
        async move { read(request.send().await.unwrap()).await }
    };
    // During the overlap both secrets verify.
    assert_eq!(post_signed_with(SECRET, "new-1").await.0, 202);
    assert_eq!(post_signed_with(old_secret, "old-1").await.0, 202);
    // Once the overlap has ended the old secret is refused; the new one still works.
    clock_offset.store(2 * 3600, std::sync::atomic::Ordering::SeqCst);
    let (status, answer) = post_signed_with(old_secret, "old-2").await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(post_signed_with(SECRET, "new-2").await.0, 202);
}
