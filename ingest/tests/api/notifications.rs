//! PUT/GET /admin/users/{id}/notifications: fields checked and named, the webhook secret issued
//! once (and stored sealed), a Telegram chat checked with a stand-in of Telegram's Bot API.

use poem::{EndpointExt, handler, web::Json as PoemJson};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Options, TestApp};

const BOT_TOKEN: &str = "424242:ingest-test-bot-token-abcdefghij";

/// Telegram's getChat, as far as the check needs: chat 1001 exists, any other is not found.
#[handler]
fn get_chat(body: PoemJson<Value>) -> poem::Response {
    let (status, answer) = if body.0["chat_id"] == "1001" {
        (
            200,
            json!({"ok": true, "result": {"id": 1001, "type": "private"}}),
        )
    } else {
        (
            400,
            json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}),
        )
    };
    poem::Response::builder()
        .status(poem::http::StatusCode::from_u16(status).unwrap())
        .content_type("application/json")
        .body(answer.to_string())
}

async fn telegram_stand_in() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = poem::Route::new().at(format!("/bot{BOT_TOKEN}/getChat"), poem::post(get_chat));
    let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app.boxed()));
    base
}

pub(crate) async fn app_with_telegram() -> TestApp {
    let telegram = telegram_stand_in().await;
    TestApp::spawn_with(Options {
        env: vec![
            ("TELEGRAM_BOT_TOKEN", BOT_TOKEN.into()),
            ("TELEGRAM_API_URL", telegram),
        ],
        ..Options::default()
    })
    .await
}

async fn user(app: &TestApp) -> String {
    let (status, body) = app
        .admin(
            Method::POST,
            "/admin/users",
            Some(json!({"email": "notify@example.com"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn settings_are_saved_and_the_webhook_secret_is_shown_once() {
    let app = app_with_telegram().await;
    let id = user(&app).await;
    let path = format!("/admin/users/{id}/notifications");
    let settings = json!({
        "telegram_chat_id": "1001",
        "webhook_url": "https://hooks.example.com/humbex",
        "email": "Ann@Example.com",
        "events": ["order_filled", "key_unusable", "order_filled"],
    });
    let (status, saved) = app.admin(Method::PUT, &path, Some(settings.clone())).await;
    assert_eq!(status, 200, "{saved}");
    let secret = saved["webhook_secret"]
        .as_str()
        .expect("a new URL issues a secret")
        .to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{secret}");
    assert_eq!(saved["email"], "ann@example.com");
    assert_eq!(saved["events"], json!(["order_filled", "key_unusable"]));

    // The same URL again keeps the secret and does not show it.
    let (status, again) = app.admin(Method::PUT, &path, Some(settings)).await;
    assert_eq!(status, 200);
    assert_eq!(again["webhook_secret"], Value::Null);
    let (status, got) = app.admin(Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(got["webhook_url"], "https://hooks.example.com/humbex");
    assert!(got.get("webhook_secret").is_none(), "{got}");

    // Stored sealed: the secret's text is nowhere in the row.
    let db = app.db().await;
    let row = db
        .query_one(
            "SELECT webhook_secret_enc FROM notification_settings WHERE user_id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap();
    let blob: Vec<u8> = row.get("webhook_secret_enc");
    assert!(
        !blob
            .windows(10)
            .any(|w| secret.as_bytes().windows(10).any(|s| s == w))
    );

    // A new URL issues a new secret; no URL drops it.
    let (_, changed) = app
        .admin(
            Method::PUT,
            &path,
            Some(json!({"webhook_url": "https://hooks.example.com/v2", "events": []})),
        )
        .await;
    let second = changed["webhook_secret"].as_str().unwrap();
    assert_ne!(second, secret);
    let (status, off) = app.admin(Method::PUT, &path, Some(json!({"events": []}))).await;
    assert_eq!(status, 200);
    assert_eq!(off["webhook_url"], Value::Null);
    assert_eq!(
        app.count("SELECT count(*) FROM notification_settings WHERE webhook_secret_enc IS NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn a_bad_destination_or_event_is_refused_with_the_field_named() {
    let app = app_with_telegram().await;
    let id = user(&app).await;
    let path = format!("/admin/users/{id}/notifications");
    for (body, field) in [
        (json!({"webhook_url": "not a url", "events": []}), "webhook_url"),
        (
            json!({"webhook_url": "http://example.com/hook", "events": []}),
            "webhook_url",
        ),
        (
            json!({"webhook_url": "https://user:pw@example.com/", "events": []}),
            "webhook_url",
        ),
        (json!({"email": "ann@", "events": []}), "email"),
        (
            json!({"telegram_chat_id": "12ab", "events": []}),
            "telegram_chat_id",
        ),
        (
            json!({"telegram_chat_id": "999", "events": []}),
            "telegram_chat_id",
        ),
        (json!({"events": ["order_filled", "order_filed"]}), "events[1]"),
    ] {
        let (status, answer) = app.admin(Method::PUT, &path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("{field}:")), "{body} -> {message}");
    }
    let (_, unknown_chat) = app
        .admin(
            Method::PUT,
            &path,
            Some(json!({"telegram_chat_id": "999", "events": []})),
        )
        .await;
    assert!(
        unknown_chat["message"]
            .as_str()
            .unwrap()
            .contains("chat not found"),
        "{unknown_chat}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM notification_settings").await,
        0,
        "nothing stored"
    );

    let nobody = format!("/admin/users/{}/notifications", uuid::Uuid::new_v4());
    let (status, _) = app.admin(Method::PUT, &nobody, Some(json!({"events": []}))).await;
    assert_eq!(status, 404);
    let (status, _) = app.admin(Method::GET, &nobody, None).await;
    assert_eq!(status, 404);
}
