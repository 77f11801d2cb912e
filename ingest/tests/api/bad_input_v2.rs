//! The negative-input table for the trading language v2 (docs/api.md#webhook-body-v2): each new
//! field's malformed or contradictory use is a 400 whose message starts with the field's name
//! (and names the other field of a contradiction), over both routes, and nothing is stored.

use serde_json::{Value, json};

use crate::harness::{TestApp, signal};

/// (what the body adds to a valid buy of 1.5 AVAXUSDT, error code, fields the message names; the
/// first is the one it starts with).
fn cases() -> Vec<(Value, &'static str, &'static [&'static str])> {
    const BAD: &str = "invalid_field";
    const BOTH: &str = "conflicting_fields";
    vec![
        // action cancel
        (json!({"action": "cancel"}), BOTH, &["quantity", "action"]),
        (
            json!({"action": "cancel", "quantity": null, "take_profit": 30}),
            BOTH,
            &["take_profit", "action"],
        ),
        (
            json!({"action": "cancel", "quantity": null, "leverage": 5}),
            BOTH,
            &["leverage", "action"],
        ),
        // target_position
        (
            json!({"target_position": "1"}),
            BOTH,
            &["quantity", "target_position"],
        ),
        (
            json!({"quantity": null, "target_position": "{{strategy.position_size}}"}),
            BAD,
            &["target_position"],
        ),
        (
            json!({"quantity": null, "target_position": "NaN"}),
            BAD,
            &["target_position"],
        ),
        (
            json!({"quantity": null, "target_position": "1e3"}),
            BAD,
            &["target_position"],
        ),
        (
            json!({"quantity": null, "target_position": "+1"}),
            BAD,
            &["target_position"],
        ),
        (
            json!({"quantity": null, "target_position": 1, "quantity_type": "usdt"}),
            BOTH,
            &["quantity_type", "quantity"],
        ),
        (
            json!({"quantity": null, "target_position": 1, "trigger_price": 20}),
            BOTH,
            &["trigger_price", "target_position"],
        ),
        (
            json!({"quantity": null, "target_position": 0, "stop_loss": 20}),
            BOTH,
            &["stop_loss", "target_position"],
        ),
        (
            json!({"quantity": null, "target_position": -1, "take_profit": 30, "price": 25}),
            BOTH,
            &["take_profit", "price"],
        ),
        // quantity_type
        (json!({"quantity_type": "coins"}), BAD, &["quantity_type"]),
        (json!({"quantity_type": 1}), BAD, &["quantity_type"]),
        (
            json!({"quantity_type": "risk_percent"}),
            BOTH,
            &["quantity_type", "stop_loss"],
        ),
        (
            json!({"quantity_type": "equity_percent", "quantity": "150"}),
            BAD,
            &["quantity"],
        ),
        (
            json!({"quantity_type": "position_percent", "quantity": 50, "take_profit": {"percent": 2}}),
            BOTH,
            &["take_profit", "quantity_type"],
        ),
        (
            json!({"action": "close", "quantity_type": "usdt", "quantity": 10}),
            BOTH,
            &["quantity_type", "action"],
        ),
        (
            json!({"quantity": "{{strategy.order.contracts}}"}),
            BAD,
            &["quantity"],
        ),
        // order_type, limit_price, time_in_force, cancel_after_secs
        (json!({"order_type": "stop"}), BAD, &["order_type"]),
        (
            json!({"order_type": "limit"}),
            BOTH,
            &["limit_price", "order_type"],
        ),
        (json!({"limit_price": "20"}), BOTH, &["limit_price", "order_type"]),
        (
            json!({"order_type": "market", "limit_price": "20"}),
            BOTH,
            &["limit_price", "order_type"],
        ),
        (
            json!({"order_type": "limit", "limit_price": "0"}),
            BAD,
            &["limit_price"],
        ),
        (
            json!({"time_in_force": "post_only"}),
            BOTH,
            &["time_in_force", "order_type"],
        ),
        (
            json!({"time_in_force": "gtc"}),
            BOTH,
            &["time_in_force", "order_type"],
        ),
        (
            json!({"order_type": "limit", "limit_price": 20, "time_in_force": "day"}),
            BAD,
            &["time_in_force"],
        ),
        (
            json!({"cancel_after_secs": 60}),
            BOTH,
            &["cancel_after_secs", "order_type"],
        ),
        (
            json!({"order_type": "limit", "limit_price": 20, "cancel_after_secs": 0}),
            BAD,
            &["cancel_after_secs"],
        ),
        (
            json!({"order_type": "limit", "limit_price": 20, "cancel_after_secs": "1.5"}),
            BAD,
            &["cancel_after_secs"],
        ),
        (
            json!({"order_type": "limit", "limit_price": 20, "cancel_after_secs": 2_592_001}),
            BAD,
            &["cancel_after_secs"],
        ),
        // trigger_price
        (json!({"trigger_price": -1}), BAD, &["trigger_price"]),
        (
            json!({"action": "close", "quantity": null, "trigger_price": 20}),
            BOTH,
            &["trigger_price", "action"],
        ),
        // take_profit, stop_loss
        (
            json!({"take_profit": {"price": 30, "percent": 2}}),
            BAD,
            &["take_profit"],
        ),
        (json!({"take_profit": {"pct": 2}}), BAD, &["take_profit"]),
        (json!({"take_profit": true}), BAD, &["take_profit"]),
        (json!({"take_profit": "{{plot_0}}"}), BAD, &["take_profit"]),
        (
            json!({"take_profit": 20, "price": 25}),
            BOTH,
            &["take_profit", "price"],
        ),
        (
            json!({"order_type": "limit", "limit_price": 20, "stop_loss": 21}),
            BOTH,
            &["stop_loss", "limit_price"],
        ),
        (
            json!({"action": "sell", "take_profit": 30, "stop_loss": 25}),
            BOTH,
            &["take_profit", "stop_loss"],
        ),
        (json!({"stop_loss": {"percent": 100}}), BAD, &["stop_loss"]),
        (
            json!({"action": "close", "quantity": null, "stop_loss": 20}),
            BOTH,
            &["stop_loss", "action"],
        ),
        // trailing_stop
        (json!({"trailing_stop": 0.5}), BAD, &["trailing_stop"]),
        (
            json!({"trailing_stop": {"percent": 1, "distance": 1}}),
            BAD,
            &["trailing_stop"],
        ),
        (
            json!({"trailing_stop": {"distance": "0.5", "activation_price": 20}, "price": 25}),
            BOTH,
            &["trailing_stop", "price"],
        ),
        // break_even
        (
            json!({"action": "close", "quantity": null, "break_even": {"trigger_percent": 1}}),
            BOTH,
            &["break_even", "action"],
        ),
        (
            json!({"break_even": {"trigger_percent": 1, "offset_percent": 1}}),
            BAD,
            &["break_even"],
        ),
        (json!({"break_even": {}}), BAD, &["break_even"]),
        (
            json!({"break_even": {"trigger_percent": 1, "offset": 0.1}}),
            BAD,
            &["break_even"],
        ),
        // leverage, margin_mode, max_lag_secs
        (json!({"leverage": 201}), BAD, &["leverage"]),
        (json!({"leverage": "0.5"}), BAD, &["leverage"]),
        (json!({"leverage": "10.125"}), BAD, &["leverage"]),
        (json!({"margin_mode": "portfolio"}), BAD, &["margin_mode"]),
        (json!({"max_lag_secs": 0}), BAD, &["max_lag_secs"]),
        (json!({"max_lag_secs": 86_401}), BAD, &["max_lag_secs"]),
        // Unresolved placeholders in v1 fields are named the same way.
        (json!({"action": "{{strategy.order.action}}"}), BAD, &["action"]),
        (json!({"symbol": "{{ticker}}"}), BAD, &["symbol"]),
    ]
}

#[tokio::test]
async fn every_bad_v2_body_is_a_400_naming_the_field_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let (_, token) = app.active_user("bad-v2@example.com").await;
    let cases = cases();
    assert!(cases.len() >= 25);
    for (extra, code, fields) in &cases {
        let body = signal(&token, extra.clone());
        for route in ["signed", "tradingview"] {
            let (status, answer) = if route == "signed" {
                app.signed(&body).await
            } else {
                app.tradingview(&body).await
            };
            assert_eq!(status, 400, "{route} {extra}: {answer}");
            assert_eq!(answer["error"], *code, "{route} {extra}: {answer}");
            let message = answer["message"].as_str().unwrap();
            assert!(message.starts_with(fields[0]), "{route} {extra}: {message}");
            for name in *fields {
                assert!(
                    message.contains(name),
                    "{route} {extra}: {message} does not name {name}"
                );
            }
        }
    }
    assert_eq!(app.count("SELECT count(*) FROM signals").await, 0);
}

#[tokio::test]
async fn placeholders_and_nan_are_explained() {
    let app = TestApp::spawn().await;
    let (_, token) = app.active_user("placeholder@example.com").await;
    let body = signal(
        &token,
        json!({"quantity": null, "target_position": "{{strategy.position_size}}"}),
    );
    let (_, answer) = app.tradingview(&body).await;
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("unresolved TradingView placeholder")
            && message.contains("{{strategy.position_size}}"),
        "{message}"
    );
    let body = signal(&token, json!({"quantity": "NaN"}));
    let (_, answer) = app.tradingview(&body).await;
    assert_eq!(
        answer["message"],
        "quantity: is NaN: the script's value was na when the alert fired"
    );
    assert_eq!(app.count("SELECT count(*) FROM signals").await, 0);
}
