//! The admin API's part of the trading language v2: subscription and strategy defaults
//! (`leverage`, `margin_mode`, `max_lag_secs`) and a signal's v2 fields as shown.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestApp, signal};

/// A 400 whose message names `field`.
fn assert_names(status: u16, answer: &Value, field: &str) {
    assert_eq!(status, 400, "{answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(message.contains(field), "{field} not named in {answer}");
}

#[tokio::test]
async fn subscription_defaults_are_set_shown_and_checked() {
    let app = TestApp::spawn().await;
    let (id, _) = app.active_user("defaults@example.com").await;
    let path = format!("/admin/users/{id}/subscription");
    let (status, sub) = app
        .admin(
            Method::PUT,
            &path,
            Some(json!({ "status": "active", "leverage": "12.50", "margin_mode": "isolated" })),
        )
        .await;
    assert_eq!(status, 200, "{sub}");
    assert_eq!(sub["leverage"], "12.5");
    assert_eq!(sub["margin_mode"], "isolated");
    let (_, user) = app.admin(Method::GET, &format!("/admin/users/{id}"), None).await;
    assert_eq!(user["subscription"]["leverage"], "12.5");
    assert_eq!(user["subscription"]["margin_mode"], "isolated");
    // PUT replaces the whole subscription: left out, they are cleared.
    let (_, sub) = app
        .admin(Method::PUT, &path, Some(json!({ "status": "active" })))
        .await;
    assert_eq!(sub["leverage"], Value::Null);
    assert_eq!(sub["margin_mode"], Value::Null);
    for (body, field) in [
        (json!({ "status": "active", "leverage": "201" }), "leverage"),
        (json!({ "status": "active", "leverage": "0.5" }), "leverage"),
        (json!({ "status": "active", "leverage": "1.234" }), "leverage"),
        (
            json!({ "status": "active", "margin_mode": "portfolio" }),
            "margin_mode",
        ),
    ] {
        let (status, answer) = app.admin(Method::PUT, &path, Some(body)).await;
        assert_names(status, &answer, field);
    }
    let (_, user) = app.admin(Method::GET, &format!("/admin/users/{id}"), None).await;
    assert_eq!(user["subscription"]["leverage"], Value::Null);
}

#[tokio::test]
async fn strategy_defaults_are_set_on_create_and_update() {
    let app = TestApp::spawn().await;
    let (status, created) = app
        .admin(
            Method::POST,
            "/admin/strategies",
            Some(json!({ "name": "trend", "max_lag_secs": 30, "leverage": "5" })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["max_lag_secs"], 30);
    assert_eq!(created["leverage"], "5");
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/admin/strategies/{id}");

    // A field left out keeps its value; null clears it.
    let (status, updated) = app
        .admin(Method::PATCH, &path, Some(json!({ "leverage": "7.5" })))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (updated["max_lag_secs"].clone(), updated["leverage"].clone()),
        (json!(30), json!("7.5"))
    );
    let (_, updated) = app
        .admin(Method::PATCH, &path, Some(json!({ "max_lag_secs": null })))
        .await;
    assert_eq!(
        (updated["max_lag_secs"].clone(), updated["leverage"].clone()),
        (Value::Null, json!("7.5"))
    );
    let (_, list) = app.admin(Method::GET, "/admin/strategies", None).await;
    assert_eq!(list[0]["leverage"], "7.5");
    assert_eq!(list[0]["max_lag_secs"], Value::Null);

    for (method, path, body, field) in [
        (
            Method::POST,
            "/admin/strategies".to_owned(),
            json!({ "name": "x", "leverage": "300" }),
            "leverage",
        ),
        (
            Method::POST,
            "/admin/strategies".to_owned(),
            json!({ "name": "y", "max_lag_secs": 0 }),
            "max_lag_secs",
        ),
        (
            Method::PATCH,
            path.clone(),
            json!({ "max_lag_secs": 86_401 }),
            "max_lag_secs",
        ),
        (
            Method::PATCH,
            path.clone(),
            json!({ "leverage": "abc" }),
            "leverage",
        ),
    ] {
        let (status, answer) = app.admin(method, &path, Some(body)).await;
        assert_names(status, &answer, field);
    }
    let (status, answer) = app
        .admin(
            Method::PATCH,
            "/admin/strategies/0190a7e2-0000-7000-8000-000000000000",
            Some(json!({ "leverage": "2" })),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    // Nothing refused was stored.
    let (_, list) = app.admin(Method::GET, "/admin/strategies", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["leverage"], "7.5");
}

#[tokio::test]
async fn a_signal_shows_its_v2_fields_and_a_v1_signal_shows_none() {
    let app = TestApp::spawn().await;
    let (_, token) = app.active_user("shown@example.com").await;
    let body = signal(
        &token,
        json!({ "quantity": "2", "quantity_type": "equity_percent", "order_type": "limit",
                "limit_price": "20.50", "take_profit": {"percent": "3"}, "stop_loss": 19,
                "trailing_stop": {"percent": "1", "activation_price": 21},
                "break_even": {"trigger_percent": 1.5}, "margin_mode": "cross", "max_lag_secs": 20 }),
    );
    let (status, answer) = app.tradingview(&body).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["signal_id"].as_str().unwrap();
    let (status, shown) = app
        .admin(Method::GET, &format!("/admin/signals/{id}"), None)
        .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["quantity"], "2");
    assert_eq!(
        shown["trade"],
        json!({ "quantity_type": "equity_percent", "target_position": null, "order_type": "limit",
                "limit_price": "20.5", "time_in_force": "gtc", "cancel_after_secs": null,
                "trigger_price": null, "take_profit": {"percent": "3"}, "stop_loss": {"price": "19"},
                "trailing_stop": {"percent": "1", "activation_price": "21"},
                "break_even": {"trigger_percent": "1.5", "offset_percent": "0"}, "leverage": null,
                "margin_mode": "cross", "max_lag_secs": 20 })
    );
    let (_, answer) = app.tradingview(&signal(&token, json!({}))).await;
    let id = answer["signal_id"].as_str().unwrap();
    let (_, shown) = app
        .admin(Method::GET, &format!("/admin/signals/{id}"), None)
        .await;
    assert_eq!(shown["trade"], Value::Null);
    let (_, page) = app.admin(Method::GET, "/admin/signals", None).await;
    assert_eq!(page["items"][1]["trade"]["order_type"], "limit");
}
