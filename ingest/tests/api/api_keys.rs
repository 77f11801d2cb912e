//! Adding an exchange key: the key is checked with a real (paper) exchange before it is stored,
//! and every kind of unsafe or unusable key is refused with an error that names the problem.

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::harness::{Options, TestApp};

async fn paper_app(env: Vec<(&'static str, String)>) -> TestApp {
    TestApp::spawn_with(Options {
        paper_exchange: true,
        env,
        ..Default::default()
    })
    .await
}

fn trading_permissions() -> Value {
    json!({ "ContractTrade": ["Order", "Position"], "Derivatives": ["DerivativesTrade"], "Wallet": [] })
}

async fn assert_refused(app: &TestApp, answer: &(u16, Value), code: &str) {
    let (status, body) = answer;
    assert_eq!(*status, 422, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert_eq!(
        app.count("SELECT count(*) FROM api_keys").await,
        0,
        "nothing stored"
    );
}

#[tokio::test]
async fn accepted_key_is_created_on_the_paper_exchange_and_stored_with_its_permissions() {
    let app = paper_app(vec![("PAPER_BALANCE_USDT", "2500".into())]).await;
    let (user, _) = app.active_user("accepted@example.com").await;
    let (status, key) = app
        .add_key(&user, "PAPERKEYACCEPTED01", "paper-secret-accepted-0123456789")
        .await;
    assert_eq!(status, 201, "{key}");
    assert!(key["permissions_checked_at"].is_string(), "{key}");
    // The paper exchange's accounts are not IP-bound: fine outside mainnet, but said.
    let warnings = key["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w.as_str().unwrap().contains("not bound")),
        "{key}"
    );
    assert!(!key.to_string().contains("PAPERKEYACCEPTED01"));

    let spec = app
        .paper()
        .exchange()
        .account_spec("PAPERKEYACCEPTED01")
        .expect("created on the paper exchange");
    assert_eq!(spec.balance_usdt, Decimal::from(2500));

    let row = app
        .db()
        .await
        .query_one(
            "SELECT permissions, permissions_checked_at IS NOT NULL FROM api_keys WHERE user_id = $1::text::uuid",
            &[&user],
        )
        .await
        .unwrap();
    let permissions: Value = row.get(0);
    assert!(row.get::<_, bool>(1));
    assert_eq!(permissions["environment"], "paper");
    assert_eq!(permissions["read_only"], false);
    assert_eq!(
        permissions["permissions"]["ContractTrade"],
        json!(["Order", "Position"])
    );
    assert!(
        !permissions.to_string().contains("PAPERKEYACCEPTED01"),
        "{permissions}"
    );

    // Listing shows no warnings: they belong to the moment the key was added.
    let (status, list) = app
        .admin(
            reqwest::Method::GET,
            &format!("/admin/users/{user}/api-keys"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(list[0].get("warnings").is_none(), "{list}");
    assert!(list[0]["permissions_checked_at"].is_string());
}

#[tokio::test]
async fn a_key_already_on_the_paper_exchange_is_checked_not_recreated() {
    let app = paper_app(Vec::new()).await;
    let (user, _) = app.active_user("existing@example.com").await;
    app.paper_account(
        "PAPERKEYEXISTING01",
        "paper-secret-existing-0123456789",
        json!({ "balance_usdt": "77" }),
    )
    .await;
    let (status, key) = app
        .add_key(&user, "PAPERKEYEXISTING01", "paper-secret-existing-0123456789")
        .await;
    assert_eq!(status, 201, "{key}");
    let spec = app.paper().exchange().account_spec("PAPERKEYEXISTING01").unwrap();
    assert_eq!(spec.balance_usdt, Decimal::from(77));
}

#[tokio::test]
async fn read_only_key_is_refused() {
    let app = paper_app(Vec::new()).await;
    let (user, _) = app.active_user("readonly@example.com").await;
    app.paper_account(
        "PAPERKEYREADONLY01",
        "paper-secret-readonly-0123456789",
        json!({ "read_only": true }),
    )
    .await;
    let answer = app
        .add_key(&user, "PAPERKEYREADONLY01", "paper-secret-readonly-0123456789")
        .await;
    assert_refused(&app, &answer, "key_read_only").await;
    assert!(answer.1["message"].as_str().unwrap().contains("read-only"));
}

#[tokio::test]
async fn key_that_can_withdraw_or_transfer_is_refused() {
    let app = paper_app(Vec::new()).await;
    let (user, _) = app.active_user("withdraw@example.com").await;
    let mut permissions = trading_permissions();
    permissions["Wallet"] = json!(["AccountTransfer", "Withdraw"]);
    app.paper_account(
        "PAPERKEYWITHDRAW01",
        "paper-secret-withdraw-0123456789",
        json!({ "permissions": permissions, "ips": ["127.0.0.1"] }),
    )
    .await;
    let answer = app
        .add_key(&user, "PAPERKEYWITHDRAW01", "paper-secret-withdraw-0123456789")
        .await;
    assert_refused(&app, &answer, "key_can_move_funds").await;
    let message = answer.1["message"].as_str().unwrap();
    assert!(message.contains("Wallet:Withdraw"), "{message}");
    assert!(message.contains("Wallet:AccountTransfer"), "{message}");
}

#[tokio::test]
async fn key_without_trade_permission_is_refused() {
    let app = paper_app(Vec::new()).await;
    let (user, _) = app.active_user("notrade@example.com").await;
    app.paper_account(
        "PAPERKEYNOTRADE001",
        "paper-secret-notrade-01234567890",
        json!({ "permissions": { "ContractTrade": ["Position"] } }),
    )
    .await;
    let answer = app
        .add_key(&user, "PAPERKEYNOTRADE001", "paper-secret-notrade-01234567890")
        .await;
    assert_refused(&app, &answer, "key_cannot_trade").await;
}

#[tokio::test]
async fn wrong_secret_is_refused_naming_it() {
    let app = paper_app(Vec::new()).await;
    let (user, _) = app.active_user("badsecret@example.com").await;
    app.paper_account(
        "PAPERKEYBADSECRET1",
        "paper-secret-the-right-one-012345",
        json!({}),
    )
    .await;
    let answer = app
        .add_key(&user, "PAPERKEYBADSECRET1", "paper-secret-a-wrong-one-0123456")
        .await;
    assert_refused(&app, &answer, "invalid_api_secret").await;
    assert!(answer.1["message"].as_str().unwrap().contains("secret"));
}

#[tokio::test]
async fn unbound_key_on_mainnet_is_refused_unless_allowed() {
    // BYBIT_ENV=mainnet with BYBIT_REST_URL pointed at the paper exchange: mainnet's rules, no
    // real exchange, and no account made for the key (only paper mode does that). A mainnet URL
    // off Bybit's hosts needs ALLOW_CUSTOM_BYBIT_URL.
    let app = paper_app(vec![
        ("BYBIT_ENV", "mainnet".into()),
        ("ALLOW_CUSTOM_BYBIT_URL", "true".into()),
    ])
    .await;
    let (user, _) = app.active_user("mainnet@example.com").await;

    let answer = app
        .add_key(&user, "NEVERCREATEDKEY001", "some-secret-0123456789abcdef")
        .await;
    assert_refused(&app, &answer, "invalid_api_key").await;
    assert!(
        app.paper()
            .exchange()
            .account_spec("NEVERCREATEDKEY001")
            .is_none()
    );

    let permissions = trading_permissions();
    app.paper_account(
        "MAINNETUNBOUND0001",
        "mainnet-secret-unbound-0123456789",
        json!({ "permissions": permissions, "ips": ["*"] }),
    )
    .await;
    let answer = app
        .add_key(&user, "MAINNETUNBOUND0001", "mainnet-secret-unbound-0123456789")
        .await;
    assert_refused(&app, &answer, "key_not_ip_bound").await;
    assert!(
        answer.1["message"]
            .as_str()
            .unwrap()
            .contains("ALLOW_UNBOUND_KEYS")
    );

    // Bound to another address: Bybit itself refuses (10010).
    app.paper_account(
        "MAINNETOTHERIP0001",
        "mainnet-secret-otherip-0123456789",
        json!({ "permissions": permissions, "ips": ["203.0.113.7"] }),
    )
    .await;
    let answer = app
        .add_key(&user, "MAINNETOTHERIP0001", "mainnet-secret-otherip-0123456789")
        .await;
    assert_refused(&app, &answer, "ip_not_allowed").await;

    app.paper_account(
        "MAINNETBOUND00001",
        "mainnet-secret-bound-0123456789",
        json!({ "permissions": permissions, "ips": ["127.0.0.1"] }),
    )
    .await;
    let (status, key) = app
        .add_key(&user, "MAINNETBOUND00001", "mainnet-secret-bound-0123456789")
        .await;
    assert_eq!(status, 201, "{key}");
    assert!(!key.to_string().contains("not bound"), "{key}");

    let allowing = paper_app(vec![
        ("BYBIT_ENV", "mainnet".into()),
        ("ALLOW_CUSTOM_BYBIT_URL", "true".into()),
        ("ALLOW_UNBOUND_KEYS", "true".into()),
    ])
    .await;
    let (user, _) = allowing.active_user("allowed@example.com").await;
    allowing
        .paper_account(
            "MAINNETUNBOUND0002",
            "mainnet-secret-unbound-0123456789",
            json!({ "permissions": permissions }),
        )
        .await;
    let (status, key) = allowing
        .add_key(&user, "MAINNETUNBOUND0002", "mainnet-secret-unbound-0123456789")
        .await;
    assert_eq!(status, 201, "{key}");
    assert!(key["warnings"].to_string().contains("not bound"), "{key}");
}

#[tokio::test]
async fn exchange_unreachable_is_503_and_stores_nothing() {
    // The harness points BYBIT_REST_URL at a port nobody listens on.
    for env in ["paper", "mainnet"] {
        let app = TestApp::spawn_with(Options {
            env: vec![
                ("BYBIT_ENV", env.into()),
                ("ALLOW_CUSTOM_BYBIT_URL", "true".into()),
            ],
            ..Default::default()
        })
        .await;
        let (user, _) = app.active_user("offline@example.com").await;
        let (status, body) = app
            .add_key(&user, "OFFLINEKEY00000001", "offline-secret-0123456789abcdef")
            .await;
        assert_eq!(status, 503, "{env}: {body}");
        assert_eq!(body["error"], "exchange_unavailable", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("nothing was stored"),
            "{body}"
        );
        assert!(!body.to_string().contains("offline-secret"), "{body}");
        assert_eq!(app.count("SELECT count(*) FROM api_keys").await, 0);
    }
}

/// docs/security.md#ip-binding-and-the-periodic-re-check: with BYBIT_EGRESS_IPS set, only a key
/// bound to one of those addresses is stored.
#[tokio::test]
async fn egress_ips_must_be_in_the_keys_ip_restriction() {
    let app = paper_app(vec![("BYBIT_EGRESS_IPS", "198.51.100.20, 127.0.0.1".into())]).await;
    let (user, _) = app.active_user("egress@example.com").await;
    let permissions = trading_permissions();
    app.paper_account(
        "PAPERKEYUNBOUND001",
        "paper-secret-unbound-0123456789ab",
        json!({ "permissions": permissions, "ips": ["*"] }),
    )
    .await;
    let answer = app
        .add_key(&user, "PAPERKEYUNBOUND001", "paper-secret-unbound-0123456789ab")
        .await;
    assert_refused(&app, &answer, "key_not_bound_to_egress_ip").await;
    let message = answer.1["message"].as_str().unwrap();
    assert!(
        message.contains("198.51.100.20") && message.contains("127.0.0.1"),
        "{message}"
    );

    app.paper_account(
        "PAPERKEYBOUNDOURS1",
        "paper-secret-bound-ours-0123456789",
        json!({ "permissions": permissions, "ips": ["127.0.0.1"] }),
    )
    .await;
    let (status, key) = app
        .add_key(&user, "PAPERKEYBOUNDOURS1", "paper-secret-bound-ours-0123456789")
        .await;
    assert_eq!(status, 201, "{key}");

    // Bound to an address the paper exchange accepts requests from, but not one we named: still
    // refused, by our rule rather than by the exchange.
    let elsewhere = paper_app(vec![("BYBIT_EGRESS_IPS", "198.51.100.20".into())]).await;
    let (user, _) = elsewhere.active_user("egress2@example.com").await;
    elsewhere
        .paper_account(
            "PAPERKEYBOUNDOTHR1",
            "paper-secret-bound-other-012345678",
            json!({ "permissions": permissions, "ips": ["127.0.0.1"] }),
        )
        .await;
    let answer = elsewhere
        .add_key(&user, "PAPERKEYBOUNDOTHR1", "paper-secret-bound-other-012345678")
        .await;
    assert_refused(&elsewhere, &answer, "key_not_bound_to_egress_ip").await;
}

/// docs/security.md#nonces-and-the-per-key-cap: the per-key encryption counter is durable and
/// capped; the key that would pass the cap is refused with a JSON 503 and nothing is stored.
#[tokio::test]
async fn encryption_cap_refuses_the_key_that_would_pass_it() {
    // Each key seals two values (key and secret): room for exactly one key.
    let app = paper_app(vec![("ENCRYPTION_MAX_PER_KEY", "3".into())]).await;
    let (user, _) = app.active_user("cap@example.com").await;
    let (status, key) = app
        .add_key(&user, "PAPERKEYCAPFIRST01", "paper-secret-cap-first-0123456789")
        .await;
    assert_eq!(status, 201, "{key}");
    let (status, body) = app
        .add_key(&user, "PAPERKEYCAPSECOND1", "paper-secret-cap-second-012345678")
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "encryption_key_exhausted", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("ENCRYPTION_MAX_PER_KEY") && message.contains("rewrap"),
        "{message}"
    );
    assert_eq!(app.count("SELECT count(*) FROM api_keys").await, 1);
    assert_eq!(
        app.count("SELECT encryptions FROM encryption_key_usage WHERE key_id = 1")
            .await,
        2,
        "the refused key counted nothing"
    );
}
