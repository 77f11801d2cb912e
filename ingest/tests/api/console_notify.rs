//! The notification settings form of a user's console page (docs/console.md#notifications): it
//! shows the stored settings, saves through the admin API's operation (read back through the API),
//! shows a new webhook secret once, names a refused field, and wants its CSRF token.

use reqwest::Method;
use reqwest::header::LOCATION;
use serde_json::{Value, json};

use crate::console::{Browser, csrf_in};
use crate::harness::{ADMIN_TOKEN, TestApp};
use crate::notifications::app_with_telegram;

/// A user, and a signed-in browser on that user's page with its CSRF token.
async fn user_page(app: &TestApp) -> (String, Browser, String) {
    let (status, body) = app
        .admin(
            Method::POST,
            "/admin/users",
            Some(json!({"email": "console-notify@example.com"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let mut browser = Browser::new(app);
    assert_eq!(browser.sign_in(ADMIN_TOKEN).await.status(), 303);
    let page = browser.get(&format!("/console/users/{id}")).await;
    assert_eq!(page.status(), 200);
    let csrf = csrf_in(&page.text().await.unwrap());
    (id, browser, csrf)
}

async fn api_settings(app: &TestApp, id: &str) -> Value {
    let (status, body) = app
        .admin(Method::GET, &format!("/admin/users/{id}/notifications"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn the_form_shows_the_settings_saves_them_and_shows_a_new_secret_once() {
    let app = app_with_telegram().await;
    let (id, mut browser, csrf) = user_page(&app).await;
    let (status, put) = app
        .admin(
            Method::PUT,
            &format!("/admin/users/{id}/notifications"),
            Some(json!({
                "telegram_chat_id": "1001",
                "webhook_url": "https://hooks.example.com/first",
                "email": "ann@example.com",
                "events": ["order_filled", "key_unusable"],
            })),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    let api_secret = put["webhook_secret"].as_str().unwrap().to_owned();

    let page = browser.get(&format!("/console/users/{id}")).await;
    let page = page.text().await.unwrap();
    for shown in [
        r#"name="telegram_chat_id" inputmode="text" maxlength="40" autocomplete="off" value="1001""#,
        r#"value="https://hooks.example.com/first""#,
        r#"value="ann@example.com""#,
        r#"value="order_filled" checked"#,
        r#"value="key_unusable" checked"#,
        r#"value="daily_summary">"#,
        r#"<label for="event-daily_summary">daily_summary</label>"#,
        "set (shown only when it was issued",
        &format!(r#"action="/console/users/{id}/notifications""#),
    ] {
        assert!(page.contains(shown), "the page lacks {shown}");
    }
    assert!(
        !page.contains(&api_secret),
        "a stored secret is never shown again"
    );

    // A new URL: saved, and its secret shown on this answer only.
    let saved = browser
        .post(
            &format!("/console/users/{id}/notifications"),
            &[
                ("csrf_token", &csrf),
                ("telegram_chat_id", " 1001 "),
                ("webhook_url", "https://hooks.example.com/second"),
                ("email", ""),
                ("events", "order_failed"),
                ("events", "daily_summary"),
            ],
        )
        .await;
    assert_eq!(saved.status(), 200);
    let answer = saved.text().await.unwrap();
    let at = answer.find("whsec_").expect("the new secret is shown");
    let secret: String = answer[at..].chars().take_while(|c| *c != '"').collect();
    assert_ne!(secret, api_secret);
    let stored = api_settings(&app, &id).await;
    assert_eq!(stored["telegram_chat_id"], "1001");
    assert_eq!(stored["webhook_url"], "https://hooks.example.com/second");
    assert_eq!(stored["email"], Value::Null, "an empty field turns email off");
    assert_eq!(stored["events"], json!(["order_failed", "daily_summary"]));
    let page = browser.get(&format!("/console/users/{id}")).await;
    assert!(!page.text().await.unwrap().contains(&secret));

    // The same URL again keeps its secret: plain post/redirect/get, nothing shown.
    let again = browser
        .post(
            &format!("/console/users/{id}/notifications"),
            &[
                ("csrf_token", &csrf),
                ("webhook_url", "https://hooks.example.com/second"),
                ("events", "order_filled"),
            ],
        )
        .await;
    assert_eq!(again.status(), 303);
    assert_eq!(again.headers()[LOCATION], format!("/console/users/{id}"));
    let stored = api_settings(&app, &id).await;
    assert_eq!(stored["telegram_chat_id"], Value::Null);
    assert_eq!(stored["events"], json!(["order_filled"]));
}

#[tokio::test]
async fn a_refused_destination_is_named_and_nothing_is_stored() {
    let app = app_with_telegram().await;
    let (id, mut browser, csrf) = user_page(&app).await;
    let path = format!("/console/users/{id}/notifications");
    for (name, value, named) in [
        (
            "webhook_url",
            "http://hooks.example.com/<b>plain</b>",
            "webhook_url: ",
        ),
        ("telegram_chat_id", "2002", "telegram_chat_id: "),
        ("email", "not-an-email", "email: "),
    ] {
        let resp = browser
            .post(
                &path,
                &[("csrf_token", &csrf), (name, value), ("events", "order_filled")],
            )
            .await;
        assert_eq!(resp.status(), 400, "{name}");
        let page = resp.text().await.unwrap();
        assert!(page.contains("role=\"alert\""), "{name}: {page}");
        assert!(page.contains(named), "{name}: the field is not named in {page}");
        let invalid = format!(r#"name="{name}" inputmode"#);
        let at = page.find(&invalid).expect("the field is on the page");
        let tag = &page[at..at + page[at..].find('>').unwrap()];
        assert!(tag.contains(r#"aria-invalid="true""#), "{name}: {tag}");
        assert!(!page.contains("<b>plain</b>"), "the posted value is escaped");
        assert!(
            page.contains(r#"value="order_filled" checked"#),
            "the form keeps what was posted"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM notification_settings").await, 0);
    let stored = api_settings(&app, &id).await;
    assert_eq!(stored["webhook_url"], Value::Null);
    assert_eq!(stored["events"], json!([]));
}

#[tokio::test]
async fn a_save_without_the_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    let (id, mut browser, _csrf) = user_page(&app).await;
    let path = format!("/console/users/{id}/notifications");
    let fields = [
        ("webhook_url", "https://hooks.example.com/x"),
        ("events", "order_filled"),
    ];
    assert_eq!(browser.post(&path, &fields).await.status(), 403);
    let wrong = [("csrf_token", &*"0".repeat(64)), fields[0], fields[1]];
    assert_eq!(browser.post(&path, &wrong).await.status(), 403);
    assert_eq!(app.count("SELECT count(*) FROM notification_settings").await, 0);
}
