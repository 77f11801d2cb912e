//! The README's TradingView message templates, sent exactly as written there: the text is read
//! from README.md, the placeholders are filled as TradingView fills them, and the body goes to
//! POST /webhook/tradingview. What reaches the exchange from such a signal is the executor's test.

use chrono::Utc;
use humbex_shared::domain::trade::{Level, QuantityType};
use humbex_shared::store::signals;
use reqwest::Method;
use serde_json::json;

use crate::harness::TestApp;

const README: &str = include_str!("../../../README.md");

/// The JSON block that follows `<!-- template: {name} -->` in the README.
fn template(name: &str) -> &'static str {
    let marker = format!("<!-- template: {name} -->");
    let after = README
        .split_once(marker.as_str())
        .unwrap_or_else(|| panic!("README has no {marker}"))
        .1;
    let block = after
        .trim_start()
        .strip_prefix("```json\n")
        .expect("a json block right after the marker");
    block.split_once("\n```").expect("a closed block").0
}

/// Fill the placeholders as TradingView does at fire time (values are plain text), replacing
/// only those in `values`; the README's token stand-in becomes a real token.
fn fill(text: &str, token_stand_in: &str, token: &str, values: &[(&str, String)]) -> String {
    let mut body = text.replace(token_stand_in, token);
    for (placeholder, value) in values {
        body = body.replace(placeholder, value);
    }
    body
}

fn timenow() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

async fn stored(app: &TestApp, id: &str) -> tokio_postgres::Row {
    let id: uuid::Uuid = id.parse().unwrap();
    app.db()
        .await
        .query_one(
            "SELECT action, symbol, quantity, price, client_id, signal_time, strategy_id, trade \
             FROM signals WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn the_readme_strategy_template_is_accepted_and_stored_as_a_target_sync() {
    let app = TestApp::spawn().await;
    let (status, strategy) = app
        .admin(
            Method::POST,
            "/admin/strategies",
            Some(json!({ "name": "readme" })),
        )
        .await;
    assert_eq!(status, 201, "{strategy}");
    let token = strategy["webhook_token"].as_str().unwrap();
    let text = template("strategy");
    assert!(text.contains(r#""target_position": "{{strategy.position_size}}""#));
    let now = timenow();
    let values = [
        ("{{strategy.order.action}}", "sell".to_owned()),
        ("{{ticker}}", "AVAXUSDT.P".to_owned()),
        ("{{strategy.position_size}}", "-2.5".to_owned()),
        ("{{strategy.order.price}}", "21.345".to_owned()),
        ("{{strategy.order.id}}", "Short".to_owned()),
        ("{{timenow}}", now.clone()),
    ];
    let body = fill(text, "hbxs_your_strategy_token", token, &values);
    assert!(!body.contains("{{"), "a placeholder left unfilled: {body}");
    let (status, answer) = app.tradingview(&body).await;
    assert_eq!(status, 202, "{body}: {answer}");
    let row = stored(&app, answer["signal_id"].as_str().unwrap()).await;
    assert_eq!(row.get::<_, String>("action"), "sell");
    assert_eq!(row.get::<_, String>("symbol"), "AVAXUSDT");
    assert_eq!(row.get::<_, Option<rust_decimal::Decimal>>("quantity"), None);
    assert_eq!(
        row.get::<_, Option<rust_decimal::Decimal>>("price")
            .unwrap()
            .normalize()
            .to_string(),
        "21.345"
    );
    assert_eq!(
        row.get::<_, Option<String>>("client_id").unwrap(),
        format!("Short-{now}")
    );
    assert!(row.get::<_, Option<uuid::Uuid>>("strategy_id").is_some());
    let trade = signals::trade_of(&row).unwrap();
    assert_eq!(trade.target_position.unwrap().get().to_string(), "-2.5");
    assert!(trade.take_profit.is_none() && trade.leverage.is_none());
    // TradingView's resend of the same alert is a duplicate.
    let (status, again) = app.tradingview(&body).await;
    assert_eq!((status, again["duplicate"].clone()), (200, json!(true)));
    // A flat strategy: 0, as TradingView prints it.
    let flat_values: Vec<(&str, String)> = values
        .iter()
        .map(|(placeholder, value)| {
            let value = match *placeholder {
                "{{strategy.position_size}}" => "0".to_owned(),
                "{{strategy.order.id}}" => "Exit".to_owned(),
                _ => value.clone(),
            };
            (*placeholder, value)
        })
        .collect();
    let flat = fill(text, "hbxs_your_strategy_token", token, &flat_values);
    let (status, answer) = app.tradingview(&flat).await;
    assert_eq!(status, 202, "{flat}: {answer}");

    // The same template in an indicator's alert: TradingView leaves strategy placeholders as
    // written, and the answer names the field, with nothing stored.
    let unfilled = fill(
        text,
        "hbxs_your_strategy_token",
        token,
        &[
            ("{{strategy.order.action}}", "buy".to_owned()),
            ("{{ticker}}", "AVAXUSDT.P".to_owned()),
            ("{{timenow}}", timenow()),
        ],
    );
    let (status, answer) = app.tradingview(&unfilled).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("target_position: holds an unresolved TradingView placeholder"),
        "{answer}"
    );
    assert_eq!(app.count("SELECT count(*) FROM signals").await, 2);
}

#[tokio::test]
async fn the_readme_indicator_template_is_accepted_and_stored_as_a_buy_with_tp_and_sl() {
    let app = TestApp::spawn().await;
    let (_, token) = app.active_user("readme@example.com").await;
    let text = template("indicator");
    let now = timenow();
    let body = fill(
        text,
        "hbxu_your_user_token",
        &token,
        &[
            ("{{ticker}}", "AVAXUSDT.P".to_owned()),
            ("{{close}}", "21.37".to_owned()),
            ("{{timenow}}", now.clone()),
        ],
    );
    assert!(!body.contains("{{"), "a placeholder left unfilled: {body}");
    let (status, answer) = app.tradingview(&body).await;
    assert_eq!(status, 202, "{body}: {answer}");
    let row = stored(&app, answer["signal_id"].as_str().unwrap()).await;
    assert_eq!(row.get::<_, String>("action"), "buy");
    assert_eq!(row.get::<_, String>("symbol"), "AVAXUSDT");
    assert_eq!(
        row.get::<_, Option<rust_decimal::Decimal>>("quantity")
            .unwrap()
            .normalize()
            .to_string(),
        "25"
    );
    assert_eq!(
        row.get::<_, Option<String>>("client_id").unwrap(),
        format!("indicator-buy-AVAXUSDT.P-{now}")
    );
    assert!(
        row.get::<_, Option<chrono::DateTime<Utc>>>("signal_time")
            .is_some()
    );
    let trade = signals::trade_of(&row).unwrap();
    assert_eq!(trade.quantity_type, QuantityType::Usdt);
    assert!(matches!(trade.take_profit, Some(Level::Percent(p)) if p.get().to_string() == "3"));
    assert!(matches!(trade.stop_loss, Some(Level::Percent(p)) if p.get().to_string() == "1.5"));
    assert!(trade.target_position.is_none());
}
