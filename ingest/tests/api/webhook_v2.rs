//! The trading language v2 over real HTTP and PostgreSQL: a v2 body is stored with its fields and
//! read back as the same `TradeSpec` the parser built; a v1 body stays NULL.

use chrono::Utc;
use humbex_ingest::webhook::body::parse_signal;
use humbex_shared::domain::trade::TradeSpec;
use humbex_shared::domain::{Symbol, SymbolPolicy};
use humbex_shared::store::signals;
use serde_json::{Value, json};

use crate::harness::{TestApp, signal};

fn symbols() -> SymbolPolicy {
    SymbolPolicy::Listed(vec![
        Symbol::parse("AVAXUSDT").unwrap(),
        Symbol::parse("BTCUSDT").unwrap(),
    ])
}

/// What the parser makes of `body` (the same function the route runs).
fn parsed_trade(body: &str) -> TradeSpec {
    parse_signal(body.as_bytes(), &symbols(), Utc::now())
        .expect("a valid body")
        .trade
}

/// The stored row's trade, quantity and action, read by column name.
async fn stored(
    app: &TestApp,
    id: &str,
) -> (Option<Value>, TradeSpec, Option<rust_decimal::Decimal>, String) {
    let id: uuid::Uuid = id.parse().unwrap();
    let row = app
        .db()
        .await
        .query_one(
            "SELECT trade, quantity, action FROM signals WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    (
        row.get("trade"),
        signals::trade_of(&row).unwrap(),
        row.get("quantity"),
        row.get("action"),
    )
}

fn assert_no_decimal_numbers(value: &Value, key: &str) {
    match value {
        Value::Number(_) => assert!(key.ends_with("_secs"), "{key} stored as a JSON number"),
        Value::Object(map) => map.iter().for_each(|(k, v)| assert_no_decimal_numbers(v, k)),
        Value::Array(items) => items.iter().for_each(|v| assert_no_decimal_numbers(v, key)),
        _ => {}
    }
}

pub fn v2_bodies(token: &str) -> Vec<String> {
    vec![
        signal(
            token,
            json!({ "quantity": "25", "quantity_type": "usdt", "take_profit": {"percent": "2.5"},
                    "stop_loss": 20.5, "price": "21", "leverage": 10, "margin_mode": "isolated" }),
        ),
        signal(
            token,
            json!({ "order_type": "limit", "limit_price": "20.75", "time_in_force": "post_only",
                    "cancel_after_secs": 300, "take_profit": {"price": "25"}, "stop_loss": {"percent": 3},
                    "trailing_stop": {"distance": "0.5", "activation_price": "22"},
                    "break_even": {"trigger_percent": "1.5", "offset_percent": "0.1"}, "max_lag_secs": "30" }),
        ),
        signal(
            token,
            json!({ "action": "sell", "quantity": 1, "quantity_type": "risk_percent",
                    "stop_loss": "23", "trigger_price": "19.5", "trailing_stop": {"percent": 1} }),
        ),
        signal(
            token,
            json!({ "action": "sell", "quantity": null, "target_position": "-2.5", "stop_loss": {"percent": "5"} }),
        ),
        signal(
            token,
            json!({ "action": "buy", "quantity": null, "target_position": 0 }),
        ),
        signal(
            token,
            json!({ "action": "close", "quantity": "50", "quantity_type": "position_percent" }),
        ),
        signal(
            token,
            json!({ "action": "buy", "quantity": "10", "quantity_type": "equity_percent", "time_in_force": "IOC" }),
        ),
    ]
}

#[tokio::test]
async fn a_v2_body_is_stored_and_read_back_as_the_same_trade_spec() {
    let app = TestApp::spawn().await;
    let (_, token) = app.active_user("v2@example.com").await;
    for body in v2_bodies(&token) {
        let (status, answer) = app.tradingview(&body).await;
        assert_eq!(status, 202, "{body}: {answer}");
        let expected = parsed_trade(&body);
        assert!(!expected.is_plain(), "{body}");
        let (json, trade, _, _) = stored(&app, answer["signal_id"].as_str().unwrap()).await;
        assert_eq!(trade, expected, "{body}");
        // Decimals are stored as strings, never as JSON numbers (only whole seconds are numbers).
        assert_no_decimal_numbers(&json.unwrap(), "");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM signals WHERE trade IS NOT NULL")
            .await,
        7
    );
}

#[tokio::test]
async fn what_each_v2_field_is_stored_as() {
    let app = TestApp::spawn().await;
    let (_, token) = app.active_user("v2-fields@example.com").await;
    let body = signal(
        &token,
        json!({ "quantity": null, "target_position": "-0.5", "order_type": "limit", "limit_price": "30",
                "take_profit": 25, "stop_loss": {"percent": "2"}, "leverage": "12.5" }),
    );
    let (status, answer) = app.signed(&body).await;
    assert_eq!(status, 202, "{answer}");
    let (json, trade, quantity, action) = stored(&app, answer["signal_id"].as_str().unwrap()).await;
    assert_eq!(quantity, None);
    assert_eq!(action, "buy");
    assert_eq!(trade.target_position.unwrap().get().to_string(), "-0.5");
    assert_eq!(
        json.unwrap(),
        json!({ "quantity_type": "base", "target_position": "-0.5", "order_type": "limit",
                "limit_price": "30", "time_in_force": "gtc", "take_profit": {"price": "25"},
                "stop_loss": {"percent": "2"}, "leverage": "12.5" })
    );

    // A cancel is stored without a quantity; its row says cancel.
    let body = signal(&token, json!({ "action": "cancel", "quantity": null }));
    let (status, answer) = app.signed(&body).await;
    assert_eq!(status, 202, "{answer}");
    let (json, trade, quantity, action) = stored(&app, answer["signal_id"].as_str().unwrap()).await;
    assert_eq!((json, quantity, action.as_str()), (None, None, "cancel"));
    assert!(trade.is_plain());
}

#[tokio::test]
async fn a_v1_body_is_stored_exactly_as_before_with_a_null_trade() {
    let app = TestApp::spawn().await;
    let (_, token) = app.active_user("v1@example.com").await;
    for extra in [
        json!({}),
        json!({ "action": "sell", "quantity": 2, "price": "21.5", "comment": "x" }),
        json!({ "action": "close", "quantity": null }),
        // Explicit defaults say nothing new: still a v1 signal.
        json!({ "quantity_type": "base", "order_type": "market" }),
    ] {
        let body = signal(&token, extra);
        let (status, answer) = app.tradingview(&body).await;
        assert_eq!(status, 202, "{body}: {answer}");
        let (json, trade, _, _) = stored(&app, answer["signal_id"].as_str().unwrap()).await;
        assert_eq!(json, None, "{body}");
        assert!(trade.is_plain());
    }
}
