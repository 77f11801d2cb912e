//! The operator console over HTTP without a browser: sessions, CSRF, escaping, headers, the event
//! stream (docs/console.md). The browser flow is in tests/console_browser.rs at the repository root.

use futures_util::StreamExt;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::harness::{ADMIN_TOKEN, Options, TestApp, signal};

/// `application/x-www-form-urlencoded`, as a browser encodes a form.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub trait FormBody {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs))
    }
}

pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A browser's worth of state: the cookies it holds and the last CSRF token it saw.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookies: Vec<(String, String)>,
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Browser {
            http: no_redirects(),
            base: app.base.clone(),
            cookies: Vec::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn keep_cookies(&mut self, resp: &reqwest::Response) {
        for value in resp.headers().get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !value.is_empty() {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> reqwest::Response {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep_cookies(&resp);
        resp
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form_body(form)
            .send()
            .await
            .unwrap();
        self.keep_cookies(&resp);
        resp
    }

    /// Sign in as a browser would: load the form, post it with its CSRF token.
    pub async fn sign_in(&mut self, token: &str) -> reqwest::Response {
        let page = self.get("/console/sign-in").await.text().await.unwrap();
        let csrf = csrf_in(&page);
        self.post("/console/sign-in", &[("csrf_token", &csrf), ("token", token)])
            .await
    }
}

/// The CSRF token of the first form in `page`.
pub fn csrf_in(page: &str) -> String {
    let at = page.find("name=\"csrf_token\" value=\"").expect("a CSRF field") + 25;
    page[at..at + 64].to_owned()
}

#[tokio::test]
async fn pages_and_events_refuse_a_browser_without_a_session() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    for path in [
        "/console",
        "/console/users",
        "/console/strategies",
        "/console/signals",
        "/console/orders",
        "/console/users/0193a000-0000-7000-8000-000000000000",
        "/console/signals/0193a000-0000-7000-8000-000000000000",
    ] {
        let resp = browser.get(path).await;
        assert_eq!(resp.status(), 303, "{path}");
        assert_eq!(resp.headers()[LOCATION], "/console/sign-in", "{path}");
    }
    let resp = browser.get("/console/events").await;
    assert_eq!(resp.status(), 401);
    // A made-up session cookie is no session.
    browser.cookies.push(("humbex_console".into(), "00".repeat(32)));
    assert_eq!(browser.get("/console").await.status(), 303);
    assert_eq!(browser.get("/console/events").await.status(), 401);
    let resp = browser
        .post(
            "/console/users",
            &[("email", "x@example.com"), ("csrf_token", "whatever")],
        )
        .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_the_session() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    let form = browser.get("/console/sign-in").await;
    assert_eq!(form.status(), 200);
    let wrong = browser.sign_in("not-the-admin-token").await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().await.unwrap().contains("not the admin token"));
    assert!(!browser.cookies.iter().any(|(k, _)| k == "humbex_console"));

    let resp = browser.sign_in(ADMIN_TOKEN).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()[LOCATION], "/console");
    let set: Vec<&str> = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let session = set
        .iter()
        .find(|c| c.starts_with("humbex_console="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=28800"] {
        assert!(session.contains(attribute), "{session} lacks {attribute}");
    }
    assert!(
        !session.contains("Secure"),
        "plain HTTP: no Secure flag ({session})"
    );
    // The database keeps the cookie value's SHA-256, not the value.
    let value = browser
        .cookies
        .iter()
        .find(|(k, _)| k == "humbex_console")
        .unwrap()
        .1
        .clone();
    let digest_kept = app
        .count(&format!(
            "SELECT count(*) FROM console_sessions WHERE id_digest = sha256('{value}'::bytea)"
        ))
        .await;
    assert_eq!(digest_kept, 1);
    assert_eq!(app.count("SELECT count(*) FROM console_sessions").await, 1);

    let overview = browser.get("/console").await;
    assert_eq!(overview.status(), 200);
    let page = overview.text().await.unwrap();
    assert!(page.contains("Overview"));
    let csrf = csrf_in(&page);

    // Sign-out needs the CSRF token too.
    assert_eq!(browser.post("/console/sign-out", &[]).await.status(), 403);
    assert_eq!(browser.get("/console").await.status(), 200);
    let out = browser.post("/console/sign-out", &[("csrf_token", &csrf)]).await;
    assert_eq!(out.status(), 303);
    assert_eq!(out.headers()[LOCATION], "/console/sign-in");
    assert_eq!(app.count("SELECT count(*) FROM console_sessions").await, 0);
    browser.cookies.push(("humbex_console".into(), value));
    assert_eq!(
        browser.get("/console").await.status(),
        303,
        "the old cookie signs nobody in"
    );
}

#[tokio::test]
async fn an_expired_session_is_refused() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    assert_eq!(browser.sign_in(ADMIN_TOKEN).await.status(), 303);
    assert_eq!(browser.get("/console").await.status(), 200);
    // An open event stream ends when its session does.
    app.db()
        .await
        .execute(
            "UPDATE console_sessions SET expires_at = now() + interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    let stream = browser.get("/console/events").await;
    assert_eq!(stream.status(), 200);
    let mut chunks = stream.bytes_stream();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(chunk) = chunks.next().await {
            chunk.expect("the stream ends cleanly");
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its session");
    app.db()
        .await
        .execute(
            "UPDATE console_sessions SET expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(browser.get("/console").await.status(), 303);
    assert_eq!(browser.get("/console/events").await.status(), 401);
}

#[tokio::test]
async fn behind_a_trusted_tls_proxy_the_cookie_is_secure() {
    let app = TestApp::spawn_with(Options {
        env: vec![("TRUSTED_PROXIES", "127.0.0.1".into())],
        ..Default::default()
    })
    .await;
    let http = no_redirects();
    let form = http
        .get(app.url("/console/sign-in"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let cookie = form.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let pre = cookie.split(';').next().unwrap().to_owned();
    let csrf = csrf_in(&form.text().await.unwrap());
    let resp = http
        .post(app.url("/console/sign-in"))
        .header("x-forwarded-proto", "https")
        .header("cookie", pre)
        .form_body(&[("csrf_token", csrf.as_str()), ("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let session = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("humbex_console="))
        .unwrap();
    assert!(
        session.contains("; Secure") && session.contains("HttpOnly"),
        "{session}"
    );
}

#[tokio::test]
async fn posts_without_the_csrf_token_or_from_another_origin_are_refused() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    browser.sign_in(ADMIN_TOKEN).await;
    let csrf = csrf_in(&browser.get("/console/users").await.text().await.unwrap());

    let none = browser
        .post("/console/users", &[("email", "a@example.com")])
        .await;
    assert_eq!(none.status(), 403);
    let wrong = browser
        .post(
            "/console/users",
            &[("email", "a@example.com"), ("csrf_token", &"0".repeat(64))],
        )
        .await;
    assert_eq!(wrong.status(), 403);
    let foreign = browser
        .http
        .post(app.url("/console/users"))
        .header("cookie", browser.cookie_header())
        .header("origin", "https://evil.example")
        .form_body(&[("email", "a@example.com"), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);

    // The sign-in form has its own token, bound to a cookie.
    let no_pre = no_redirects()
        .post(app.url("/console/sign-in"))
        .form_body(&[("csrf_token", csrf.as_str()), ("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(no_pre.status(), 403);

    let ok = browser
        .post(
            "/console/users",
            &[("email", "a@example.com"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(ok.status(), 201);
    let page = ok.text().await.unwrap();
    assert!(page.contains("hbxu_"), "the new token is shown once");
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
}

#[tokio::test]
async fn every_console_answer_is_no_store_under_a_strict_csp() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    browser.sign_in(ADMIN_TOKEN).await;
    for path in [
        "/console",
        "/console/sign-in",
        "/console/users",
        "/console/strategies",
        "/console/signals",
        "/console/orders",
        "/console/static/console.js",
    ] {
        let resp = browser.get(path).await;
        assert!(
            resp.status().is_success() || resp.status() == 303,
            "{path}: {}",
            resp.status()
        );
        assert_eq!(resp.headers()[CACHE_CONTROL], "no-store", "{path}");
        let csp = resp.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    }
    let page = browser.get("/console").await.text().await.unwrap();
    // No inline script anywhere: the only script is the static file.
    assert_eq!(page.matches("<script").count(), 1);
    assert!(page.contains("<script src=\"/console/static/console.js\" defer></script>"));
}

#[tokio::test]
async fn user_supplied_text_is_shown_escaped() {
    let app = TestApp::spawn().await;
    let (user, token) = app.active_user("trader@example.com").await;
    let mut browser = Browser::new(&app);
    browser.sign_in(ADMIN_TOKEN).await;
    let csrf = csrf_in(&browser.get("/console/strategies").await.text().await.unwrap());
    let evil = "<script>alert('x')</script>";
    let created = browser
        .post("/console/strategies", &[("name", evil), ("csrf_token", &csrf)])
        .await;
    assert_eq!(created.status(), 201);
    let list = browser.get("/console/strategies").await.text().await.unwrap();
    assert!(list.contains("&lt;script&gt;alert('x')&lt;/script&gt;"), "{list}");
    assert!(!list.contains(evil));
    // The strategy's page: its defaults (set through the API) and its PnL, from the API's functions.
    let (_, strategies) = app.admin(reqwest::Method::GET, "/admin/strategies", None).await;
    let strategy = strategies[0]["id"].as_str().unwrap();
    let (status, _) = app
        .admin(
            reqwest::Method::PATCH,
            &format!("/admin/strategies/{strategy}"),
            Some(json!({ "leverage": "7", "max_lag_secs": 30 })),
        )
        .await;
    assert_eq!(status, 200);
    let page = browser
        .get(&format!("/console/strategies/{strategy}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("<dt>default leverage</dt><dd>7</dd>"), "{page}");
    assert!(page.contains("<dt>default max lag</dt><dd>30 s</dd>"), "{page}");
    assert!(page.contains("data-pnl-total=\"0\""), "{page}");
    assert!(!page.contains("Not available yet"), "{page}");

    let body = signal(&token, json!({ "comment": evil }));
    let (status, answer) = app.tradingview(&body).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["signal_id"].as_str().unwrap();
    let page = browser
        .get(&format!("/console/signals/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("&lt;script&gt;"), "{page}");
    assert!(!page.contains(evil));
    assert!(page.contains("id=\"orders-followed\""), "{page}");
    assert!(!page.contains("Not available yet"), "{page}");
    assert!(
        !page.contains(&token),
        "the raw body is shown with its token redacted"
    );
    let user_page = browser
        .get(&format!("/console/users/{user}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        user_page.contains(id.split('-').next().unwrap()),
        "the user's recent signals list it"
    );
}

#[tokio::test]
async fn forms_call_the_admin_operations_and_redirect() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    browser.sign_in(ADMIN_TOKEN).await;
    let (status, user) = app
        .admin(
            reqwest::Method::POST,
            "/admin/users",
            Some(json!({ "email": "sub@example.com" })),
        )
        .await;
    assert_eq!(status, 201);
    let id = user["id"].as_str().unwrap();
    let page = browser
        .get(&format!("/console/users/{id}"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = csrf_in(&page);
    let resp = browser
        .post(
            &format!("/console/users/{id}/subscription"),
            &[
                ("csrf_token", csrf.as_str()),
                ("status", "active"),
                ("expires_at", "2099-01-02T03:04"),
                ("strategy_id", ""),
                ("size_multiplier", "2.5"),
                ("max_qty", ""),
                ("payment_ref", "invoice 7"),
                ("leverage", "12.50"),
                ("margin_mode", "isolated"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()[LOCATION], format!("/console/users/{id}").as_str());
    let (_, shown) = app
        .admin(reqwest::Method::GET, &format!("/admin/users/{id}"), None)
        .await;
    let sub = &shown["subscription"];
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["size_multiplier"], "2.5");
    assert_eq!(sub["payment_ref"], "invoice 7");
    assert_eq!(sub["expires_at"], "2099-01-02T03:04:00+00:00");
    assert_eq!(sub["leverage"], "12.5");
    assert_eq!(sub["margin_mode"], "isolated");
    // The form shows them back, and the user's (empty) positions and PnL from the API's functions.
    let page = browser
        .get(&format!("/console/users/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("name=\"leverage\" inputmode=\"decimal\" value=\"12.5\""),
        "{page}"
    );
    assert!(page.contains("<option value=\"isolated\" selected>"), "{page}");
    assert!(page.contains("No open positions."), "{page}");
    assert!(page.contains("data-pnl-total=\"0\""), "{page}");
    assert!(!page.contains("Not available yet"), "{page}");

    // The same rules as the API, with the same messages.
    let bad = browser
        .post(
            &format!("/console/users/{id}/subscription"),
            &[
                ("csrf_token", csrf.as_str()),
                ("status", "active"),
                ("size_multiplier", "-1"),
            ],
        )
        .await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("size_multiplier"));
    for (name, value) in [("leverage", "201"), ("margin_mode", "portfolio")] {
        let bad = browser
            .post(
                &format!("/console/users/{id}/subscription"),
                &[("csrf_token", csrf.as_str()), ("status", "active"), (name, value)],
            )
            .await;
        assert_eq!(bad.status(), 400, "{name}");
        assert!(bad.text().await.unwrap().contains(name), "{name}");
    }
    let dup = browser
        .post(
            "/console/users",
            &[("csrf_token", csrf.as_str()), ("email", "SUB@example.com")],
        )
        .await;
    assert_eq!(dup.status(), 409);

    // Search and paging.
    let found = browser.get("/console/users?q=sub%40").await.text().await.unwrap();
    assert!(found.contains("sub@example.com"));
    let none = browser.get("/console/users?q=nobody").await.text().await.unwrap();
    assert!(!none.contains("sub@example.com"));
}

#[tokio::test]
async fn the_event_stream_announces_a_new_signal() {
    let app = TestApp::spawn().await;
    let (_, token) = app.active_user("live@example.com").await;
    let mut browser = Browser::new(&app);
    browser.sign_in(ADMIN_TOKEN).await;
    let resp = browser.get("/console/events").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()[CACHE_CONTROL], "no-store");
    let mut stream = resp.bytes_stream();
    let mut seen = String::new();
    // The stream says hello first; after that the LISTEN connection may still be starting, so
    // keep sending until one of our signals is announced.
    let first = stream.next().await.unwrap().unwrap();
    seen.push_str(std::str::from_utf8(&first).unwrap());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut sent = Vec::new();
    loop {
        let (status, answer) = app
            .tradingview(&signal(&token, json!({ "id": format!("live-{}", sent.len()) })))
            .await;
        assert_eq!(status, 202, "{answer}");
        sent.push(answer["signal_id"].as_str().unwrap().to_owned());
        match tokio::time::timeout(std::time::Duration::from_millis(500), stream.next()).await {
            Ok(Some(Ok(chunk))) => seen.push_str(std::str::from_utf8(&chunk).unwrap()),
            Ok(other) => panic!("the stream ended: {other:?}"),
            Err(_) => {}
        }
        if sent
            .iter()
            .any(|id| seen.contains(&format!("event: signal\ndata: {id}\n")))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no signal event in 10 s: {seen}"
        );
    }
}

#[tokio::test]
async fn failed_sign_ins_are_rate_limited() {
    let app = TestApp::spawn_with(Options {
        env: vec![("RATE_LIMIT_AUTH_FAILURES_PER_MINUTE", "3".into())],
        ..Default::default()
    })
    .await;
    let mut browser = Browser::new(&app);
    for _ in 0..3 {
        assert_eq!(browser.sign_in("wrong").await.status(), 401);
    }
    let page = browser.get("/console/sign-in").await;
    assert_eq!(page.status(), 429);
    assert!(page.headers().contains_key("retry-after"));
}
