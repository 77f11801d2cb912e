//! The admin API: authorisation on every path of the spec, users, keys sealed to their row,
//! subscriptions, and paging through signals and orders.

use humbex_shared::api_key_vault::{SECRET_COLUMN, TABLE};
use humbex_shared::crypto::{CellRef, Keyring};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{ADMIN_TOKEN, ENCRYPTION_KEY, Options, TestApp, read, signal};

#[tokio::test]
async fn every_admin_path_in_the_spec_requires_the_admin_token() {
    let app = TestApp::spawn().await;
    let (_, user_token) = app.active_user("authz@example.com").await;
    let spec: Value = serde_json::from_str(&humbex_ingest::api::spec_json()).unwrap();
    let mut checked = 0;
    for (path, ops) in spec["paths"].as_object().unwrap() {
        if !path.starts_with("/admin") {
            continue;
        }
        let concrete = path.replace("{id}", &Uuid::now_v7().to_string());
        for method in ops.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            for auth in [
                None,
                Some(user_token.as_str()),
                Some("wrong-admin-token-000000"),
                Some(&ADMIN_TOKEN[1..]),
            ] {
                let mut req = app
                    .http
                    .request(method.clone(), app.url(&concrete))
                    .json(&json!({}));
                if let Some(token) = auth {
                    req = req.bearer_auth(token);
                }
                let (status, answer) = read(req.send().await.unwrap()).await;
                assert_eq!(status, 401, "{method} {concrete} with {auth:?}: {answer}");
                assert_eq!(answer["error"], "unauthorized");
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 4 * 14,
        "only {checked} checks: is the spec missing admin routes?"
    );
}

#[tokio::test]
async fn users_are_created_listed_and_found() {
    let app = TestApp::spawn().await;
    let (status, created) = app
        .admin(
            Method::POST,
            "/admin/users",
            Some(json!({ "email": " Trader@Example.com " })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["email"], "trader@example.com");
    let token = created["webhook_token"].as_str().unwrap();
    assert!(
        token.starts_with("hbxu_") && token.starts_with(created["webhook_token_prefix"].as_str().unwrap())
    );
    let id = created["id"].as_str().unwrap();

    let (status, again) = app
        .admin(
            Method::POST,
            "/admin/users",
            Some(json!({ "email": "TRADER@example.com" })),
        )
        .await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"], "conflict");
    for bad in [
        json!({ "email": "not-an-email" }),
        json!({}),
        json!({ "email": "a@b.c", "role": "x" }),
    ] {
        let (status, answer) = app.admin(Method::POST, "/admin/users", Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(answer["error"].is_string() && answer["message"].is_string());
    }

    let (status, user) = app.admin(Method::GET, &format!("/admin/users/{id}"), None).await;
    assert_eq!(status, 200);
    assert!(
        user.get("webhook_token").is_none(),
        "the token is shown only at creation"
    );
    assert!(user["subscription"].is_null());
    let (status, list) = app.admin(Method::GET, "/admin/users", None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, answer) = app
        .admin(Method::GET, &format!("/admin/users/{}", Uuid::now_v7()), None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(answer["error"], "not_found");
    let (status, answer) = app.admin(Method::GET, "/admin/users/not-a-uuid", None).await;
    assert_eq!(status, 400, "{answer}");
}

#[tokio::test]
async fn subscriptions_are_replaced_whole_and_record_their_activation() {
    let app = TestApp::spawn().await;
    let (_, user) = app
        .admin(
            Method::POST,
            "/admin/users",
            Some(json!({ "email": "sub@example.com" })),
        )
        .await;
    let id = user["id"].as_str().unwrap();
    let (_, strategy) = app
        .admin(Method::POST, "/admin/strategies", Some(json!({ "name": "s1" })))
        .await;
    let path = format!("/admin/users/{id}/subscription");
    let (status, sub) = app
        .admin(
            Method::PUT,
            &path,
            Some(json!({
                "status": "active", "strategy_id": strategy["id"], "size_multiplier": "2.5",
                "max_qty": "10", "payment_ref": "mexc-tx-123", "expires_at": "2099-01-01T00:00:00Z"
            })),
        )
        .await;
    assert_eq!(status, 200, "{sub}");
    assert_eq!(sub["active_now"], true);
    assert_eq!(sub["size_multiplier"], "2.5");
    assert_eq!(sub["max_qty"], "10");
    assert_eq!(sub["payment_ref"], "mexc-tx-123");
    assert_eq!(sub["activated_by"], "admin");
    let activated_at = sub["activated_at"].clone();
    assert!(activated_at.is_string());
    let (_, strategies) = app.admin(Method::GET, "/admin/strategies", None).await;
    assert_eq!(strategies[0]["active_subscribers"], 1);

    let (status, sub) = app
        .admin(Method::PUT, &path, Some(json!({ "status": "inactive" })))
        .await;
    assert_eq!(status, 200);
    assert_eq!(sub["active_now"], false);
    assert_eq!(sub["size_multiplier"], "1");
    assert!(sub["strategy_id"].is_null() && sub["max_qty"].is_null());

    for (bad, field) in [
        (json!({ "status": "paused" }), "paused"),
        (
            json!({ "status": "active", "size_multiplier": "0" }),
            "size_multiplier",
        ),
        (json!({ "status": "active", "max_qty": "-1" }), "max_qty"),
    ] {
        let (status, answer) = app.admin(Method::PUT, &path, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains(field), "{answer}");
    }
    let (status, _) = app
        .admin(
            Method::PUT,
            &format!("/admin/users/{}/subscription", Uuid::now_v7()),
            Some(json!({ "status": "active" })),
        )
        .await;
    assert_eq!(status, 404);
    // A well-formed strategy id that names nothing.
    let (status, answer) = app
        .admin(
            Method::PUT,
            &path,
            Some(json!({ "status": "active", "strategy_id": Uuid::now_v7() })),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("strategy_id"),
        "{answer}"
    );
}

#[tokio::test]
async fn api_keys_are_sealed_to_their_row_and_never_returned() {
    // Keys are checked with the exchange before they are stored, so this runs against a paper one.
    let app = TestApp::spawn_with(Options {
        paper_exchange: true,
        ..Default::default()
    })
    .await;
    let (a, _) = app.active_user("ka@example.com").await;
    let (b, _) = app.active_user("kb@example.com").await;
    let secret_a = "SECRETaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let secret_b = "SECRETbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    let (status, key_a) = app
        .admin(
            Method::POST,
            &format!("/admin/users/{a}/api-keys"),
            Some(json!({ "api_key": "KEYAAAAAAAAAAAAAAA", "api_secret": secret_a, "label": "main" })),
        )
        .await;
    assert_eq!(status, 201, "{key_a}");
    assert_eq!(key_a["api_key_masked"], "KEY****AAA");
    let text = key_a.to_string();
    assert!(!text.contains(secret_a) && !text.contains("KEYAAAAAAAAAAAAAAA"));
    let (status, key_b) = app
        .admin(
            Method::POST,
            &format!("/admin/users/{b}/api-keys"),
            Some(json!({ "api_key": "KEYBBBBBBBBBBBBBBB", "api_secret": secret_b })),
        )
        .await;
    assert_eq!(status, 201);

    // Nothing in the table holds the secret in clear.
    let db = app.db().await;
    let clear: i64 = db
        .query_one(
            "SELECT count(*) FROM api_keys WHERE position($1::bytea in api_secret_enc) > 0 OR position($2::bytea in api_key_enc) > 0",
            &[&secret_a.as_bytes(), &"KEYAAAAAAAAAAAAAAA".as_bytes()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(clear, 0);

    // Each secret opens in its own row, and fails once copied into the other user's row.
    let id_a: Uuid = key_a["id"].as_str().unwrap().parse().unwrap();
    let id_b: Uuid = key_b["id"].as_str().unwrap().parse().unwrap();
    let (ua, ub): (Uuid, Uuid) = (a.parse().unwrap(), b.parse().unwrap());
    // Ingest only seals; the test opens with the same key to check the binding.
    let keyring = Keyring::from_config(Some(ENCRYPTION_KEY), None, None).unwrap();
    let cell = |row_id, user_id| CellRef {
        table: TABLE,
        column: SECRET_COLUMN,
        row_id,
        user_id,
    };
    let blob = |id: Uuid| {
        let db = &db;
        async move {
            db.query_one("SELECT api_secret_enc FROM api_keys WHERE id = $1", &[&id])
                .await
                .unwrap()
                .get::<_, Vec<u8>>(0)
        }
    };
    let (blob_a, blob_b) = (blob(id_a).await, blob(id_b).await);
    assert_eq!(
        keyring.open(cell(id_a, ua), &blob_a).unwrap().as_slice(),
        secret_a.as_bytes()
    );
    db.execute(
        "UPDATE api_keys SET api_secret_enc = CASE WHEN id = $1 THEN $4::bytea ELSE $3::bytea END WHERE id IN ($1, $2)",
        &[&id_a, &id_b, &blob_a, &blob_b],
    )
    .await
    .unwrap();
    let swapped = blob(id_a).await;
    assert_eq!(swapped, blob_b);
    assert!(
        keyring.open(cell(id_a, ua), &swapped).is_err(),
        "a copied ciphertext must not open"
    );
    assert!(keyring.open(cell(id_b, ub), &blob(id_b).await).is_err());

    // Listing is masked; revoking is idempotent; unknown ids are 404.
    let (status, list) = app
        .admin(Method::GET, &format!("/admin/users/{a}/api-keys"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(secret_a));
    let (status, revoked) = app
        .admin(Method::DELETE, &format!("/admin/api-keys/{id_a}"), None)
        .await;
    assert_eq!(status, 200);
    assert!(revoked["revoked_at"].is_string());
    let (status, again) = app
        .admin(Method::DELETE, &format!("/admin/api-keys/{id_a}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(again["revoked_at"], revoked["revoked_at"]);
    let (status, _) = app
        .admin(
            Method::DELETE,
            &format!("/admin/api-keys/{}", Uuid::now_v7()),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .admin(
            Method::POST,
            &format!("/admin/users/{}/api-keys", Uuid::now_v7()),
            Some(json!({ "api_key": "K", "api_secret": "S" })),
        )
        .await;
    assert_eq!(status, 404);
    let (status, answer) = app
        .admin(
            Method::POST,
            &format!("/admin/users/{a}/api-keys"),
            Some(json!({ "api_key": "has space", "api_secret": "S" })),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
}

/// `signals_by_status` holds finished signals only (sql/V13): received and processing signals are
/// found through `signals_waiting`. Every status must still list exactly its own signals, newest
/// first, and the overview must count each.
#[tokio::test]
async fn signals_filter_by_each_status() {
    let app = TestApp::spawn().await;
    let (_user, token) = app.active_user("statuses@example.com").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (status, answer) = app
            .signed(&signal(&token, json!({ "id": format!("st-{i}") })))
            .await;
        assert_eq!(status, 202, "{answer}");
        ids.push(answer["signal_id"].as_str().unwrap().parse::<Uuid>().unwrap());
    }
    let db = app.db().await;
    let set = |id: Uuid, status: &'static str| {
        let db = &db;
        async move {
            db.execute(
                "UPDATE signals SET status = $2,                      reject_reason = CASE WHEN $2 = 'rejected' THEN 'a test' END WHERE id = $1",
                &[&id, &status],
            )
            .await
            .unwrap();
        }
    };
    set(ids[1], "processing").await;
    set(ids[2], "done").await;
    set(ids[3], "rejected").await;
    set(ids[4], "done").await;
    let expected = [
        ("received", vec![ids[0]]),
        ("processing", vec![ids[1]]),
        ("done", vec![ids[4], ids[2]]),
        ("rejected", vec![ids[3]]),
    ];
    for (status, want) in expected {
        let (code, page) = app
            .admin(Method::GET, &format!("/admin/signals?status={status}"), None)
            .await;
        assert_eq!(code, 200, "{page}");
        let got: Vec<Uuid> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(got, want, "status={status}");
    }
    // The overview counts each status through the same two indexes.
    let (code, overview) = app.admin(Method::GET, "/admin/overview", None).await;
    assert_eq!(code, 200, "{overview}");
    assert_eq!(
        overview["signals_24h"],
        json!([
            { "status": "done", "count": 2 },
            { "status": "processing", "count": 1 },
            { "status": "received", "count": 1 },
            { "status": "rejected", "count": 1 },
        ])
    );
}

#[tokio::test]
async fn signals_and_orders_page_newest_first() {
    let app = TestApp::spawn().await;
    let (user, token) = app.active_user("pages@example.com").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (status, answer) = app
            .signed(&signal(&token, json!({ "id": format!("p-{i}") })))
            .await;
        assert_eq!(status, 202);
        ids.push(answer["signal_id"].as_str().unwrap().to_owned());
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut path = "/admin/signals?limit=2".to_owned();
    loop {
        let (status, page) = app.admin(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_owned()),
        );
        match page["next_before"].as_str() {
            Some(cursor) => path = format!("/admin/signals?limit=2&before={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let (status, _) = app.admin(Method::GET, "/admin/signals?limit=0", None).await;
    assert_eq!(status, 400);

    // An order with a fill, as the executor will write them, shows up under its signal.
    let signal_id: Uuid = ids[0].parse().unwrap();
    let user_id: Uuid = user.parse().unwrap();
    let db = app.db().await;
    db.execute(
        "INSERT INTO orders (id, signal_id, user_id, order_link_id, symbol, side, qty, status, avg_price, filled_qty) \
         VALUES ($1, $2, $3, 'hbx-test-1', 'AVAXUSDT', 'buy', 1.5, 'filled', 30.1, 1.5)",
        &[&Uuid::now_v7(), &signal_id, &user_id],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO fills (exec_id, order_id, qty, price, fee, exec_time) \
         SELECT 'exec-1', id, 1.5, 30.1, 0.02, now() FROM orders",
        &[],
    )
    .await
    .unwrap();
    let (status, detail) = app
        .admin(Method::GET, &format!("/admin/signals/{signal_id}"), None)
        .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["id"], ids[0].as_str());
    let order = &detail["orders"][0];
    assert_eq!(order["status"], "filled");
    assert_eq!(order["qty"], "1.5");
    assert_eq!(order["fills"][0]["exec_id"], "exec-1");
    assert_eq!(order["fills"][0]["fee"], "0.02");
    let (status, orders) = app.admin(Method::GET, "/admin/orders?status=filled", None).await;
    assert_eq!(status, 200);
    assert_eq!(orders["items"].as_array().unwrap().len(), 1);
    let (status, orders) = app.admin(Method::GET, "/admin/orders?status=pending", None).await;
    assert_eq!(status, 200);
    assert!(orders["items"].as_array().unwrap().is_empty());
    let (status, _) = app.admin(Method::GET, "/admin/orders?status=bogus", None).await;
    assert_eq!(status, 400);
    let (status, _) = app
        .admin(Method::GET, &format!("/admin/signals/{}", Uuid::now_v7()), None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn responses_carry_security_headers_and_no_cors_by_default() {
    let app = TestApp::spawn().await;
    for path in [
        "/health",
        "/ready",
        "/admin/users",
        "/nowhere",
        "/openapi.json",
        "/docs",
    ] {
        let resp = app
            .http
            .get(app.url(path))
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        let h = resp.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert!(h.get("access-control-allow-origin").is_none(), "{path}");
    }
    let resp = app.http.get(app.url("/nowhere")).send().await.unwrap();
    let (status, answer) = read(resp).await;
    assert_eq!(status, 404);
    assert_eq!(answer["error"], "not_found");
    let resp = app.http.delete(app.url("/webhook")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
    let resp = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.unwrap().contains("swagger"));
    let resp = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    let served: Value = resp.json().await.unwrap();
    assert_eq!(served["info"]["title"], "HUMBEX");
}

#[tokio::test]
async fn the_docs_ui_cannot_be_pointed_at_a_foreign_spec() {
    let app = TestApp::spawn().await;
    let resp = app
        .http
        .get(app.url("/docs?url=https://evil.example/spec.json&configUrl=https://evil.example/config.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    // Even if the page tried, the browser may fetch from this origin only.
    assert!(csp.contains("connect-src 'self'") && !csp.contains("*"), "{csp}");
    let page = resp.text().await.unwrap();
    // The spec is embedded in the page; query-string configuration is never switched on.
    assert!(page.contains("\"title\":\"HUMBEX\"") || page.contains("\"title\": \"HUMBEX\""));
    assert!(!page.contains("evil.example"));
    assert!(!page.contains("queryConfigEnabled: true") && !page.contains("queryConfigEnabled:true"));
}

#[tokio::test]
async fn the_docs_page_runs_only_hashed_inline_code_and_can_be_switched_off() {
    let app = TestApp::spawn().await;
    let resp = app.http.get(app.url("/docs")).send().await.unwrap();
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(csp.contains("style-src 'sha256-"), "{csp}");

    let off = TestApp::spawn_with(Options {
        env: vec![("DOCS_ENABLED", "false".into())],
        ..Options::default()
    })
    .await;
    let resp = off.http.get(off.url("/docs")).send().await.unwrap();
    let (status, answer) = read(resp).await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["error"], "not_found");
    // The OpenAPI document stays: clients generate code from it.
    let resp = off.http.get(off.url("/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}
