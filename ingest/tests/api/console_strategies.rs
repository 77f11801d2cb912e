//! The console's strategy defaults form over HTTP: it calls the function behind
//! `PATCH /admin/strategies/{id}` (same checks, same messages), posts and redirects, and shows a
//! refusal beside the field it names.

use reqwest::header::LOCATION;
use serde_json::json;

use crate::console::{Browser, csrf_in};
use crate::harness::{ADMIN_TOKEN, TestApp};

#[tokio::test]
async fn the_strategy_defaults_form_sets_clears_and_refuses_as_the_api_does() {
    let app = TestApp::spawn().await;
    let (status, created) = app
        .admin(
            reqwest::Method::POST,
            "/admin/strategies",
            Some(json!({ "name": "trend" })),
        )
        .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap();
    let page_path = format!("/console/strategies/{id}");
    let action = format!("/console/strategies/{id}/defaults");
    let mut browser = Browser::new(&app);
    browser.sign_in(ADMIN_TOKEN).await;
    let page = browser.get(&page_path).await.text().await.unwrap();
    for label in [
        "<label for=\"max_lag_secs\">",
        "<label for=\"leverage\">",
        "<input id=\"max_lag_secs\" name=\"max_lag_secs\"",
        "<input id=\"leverage\" name=\"leverage\"",
    ] {
        assert!(page.contains(label), "{label} missing: {page}");
    }
    let csrf = csrf_in(&page);

    // Without the CSRF token: refused, nothing changed.
    let refused = browser
        .post(&action, &[("max_lag_secs", "90"), ("leverage", "7.5")])
        .await;
    assert_eq!(refused.status(), 403);

    // Saved: post, redirect, get.
    let saved = browser
        .post(
            &action,
            &[
                ("csrf_token", &csrf),
                ("max_lag_secs", " 90 "),
                ("leverage", "7.50"),
            ],
        )
        .await;
    assert_eq!(saved.status(), 303);
    assert_eq!(saved.headers()[LOCATION], format!("{page_path}?saved=1").as_str());
    let (_, shown) = app.admin(reqwest::Method::GET, "/admin/strategies", None).await;
    assert_eq!(shown[0]["max_lag_secs"], 90);
    assert_eq!(shown[0]["leverage"], "7.5");
    let page = browser
        .get(&format!("{page_path}?saved=1"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Defaults saved."), "{page}");
    assert!(
        page.contains("name=\"max_lag_secs\" inputmode=\"numeric\" value=\"90\""),
        "{page}"
    );
    assert!(
        page.contains("name=\"leverage\" inputmode=\"decimal\" value=\"7.5\""),
        "{page}"
    );

    // Refused by the admin function's own rules: the page again, with the API's status, the
    // message beside the field it names, and what was typed kept.
    for (lag, leverage, field, message) in [
        (
            "0",
            "7.5",
            "max_lag_secs",
            "max_lag_secs: must be between 1 and 86400",
        ),
        (
            "soon",
            "7.5",
            "max_lag_secs",
            "max_lag_secs: must be a whole number of seconds",
        ),
        ("90", "201", "leverage", "leverage: "),
        ("90", "lots", "leverage", "leverage: "),
    ] {
        let resp = browser
            .post(
                &action,
                &[
                    ("csrf_token", &csrf),
                    ("max_lag_secs", lag),
                    ("leverage", leverage),
                ],
            )
            .await;
        assert_eq!(resp.status(), 400, "{lag} {leverage}");
        let page = resp.text().await.unwrap();
        assert!(page.contains(message), "{message}: {page}");
        assert!(
            page.contains(&format!(
                "aria-invalid=\"true\" aria-describedby=\"{field}-error\""
            )),
            "{field} not marked: {page}"
        );
        assert!(
            page.contains(&format!("<p id=\"{field}-error\" class=\"error\">{message}")),
            "{page}"
        );
        assert!(page.contains(&format!("value=\"{leverage}\"")), "{page}");
    }
    // The API refuses the same leverage with the same field named.
    let (status, body) = app
        .admin(
            reqwest::Method::PATCH,
            &format!("/admin/strategies/{id}"),
            Some(json!({ "leverage": "201" })),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("`leverage`"), "{body}");
    let (_, shown) = app.admin(reqwest::Method::GET, "/admin/strategies", None).await;
    assert_eq!(shown[0]["max_lag_secs"], 90, "a refused form changed nothing");

    // Empty fields clear the defaults (null in the API).
    let cleared = browser
        .post(
            &action,
            &[("csrf_token", &csrf), ("max_lag_secs", ""), ("leverage", "")],
        )
        .await;
    assert_eq!(cleared.status(), 303);
    let (_, shown) = app.admin(reqwest::Method::GET, "/admin/strategies", None).await;
    assert_eq!(shown[0]["max_lag_secs"], serde_json::Value::Null);
    assert_eq!(shown[0]["leverage"], serde_json::Value::Null);

    // An unknown strategy is the API's 404.
    let missing = browser
        .post(
            &format!("/console/strategies/{}/defaults", uuid::Uuid::new_v4()),
            &[("csrf_token", &csrf), ("max_lag_secs", "5"), ("leverage", "")],
        )
        .await;
    assert_eq!(missing.status(), 404);
}
