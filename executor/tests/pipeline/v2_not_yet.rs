//! Until the executor carries out the trading language v2, a `cancel` or a signal with v2 fields is
//! rejected with a reason a trader can read, and nothing reaches the exchange: it is never traded
//! as the plain market order it is not. (Replaced by the v2 scenarios when the executor does them.)

use serde_json::json;

use crate::harness::Pipeline;

async fn reject_reason(p: &Pipeline, signal_id: &str) -> Option<String> {
    let id: uuid::Uuid = signal_id.parse().unwrap();
    p.db()
        .await
        .query_one("SELECT reject_reason FROM signals WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get("reject_reason")
}

#[tokio::test]
async fn cancel_and_v2_signals_are_rejected_in_words_and_nothing_is_sent() {
    let p = Pipeline::start(1).await;
    let (_, token, key) = p.trader("v2@example.com", json!({}), "10000").await;
    let limit = p
        .signal(
            &token,
            json!({ "action": "buy", "quantity": "1", "order_type": "limit", "limit_price": "20" }),
        )
        .await;
    assert_eq!(p.settled(&limit).await, "rejected");
    assert!(
        reject_reason(&p, &limit).await.unwrap().contains("v2 fields"),
        "{:?}",
        reject_reason(&p, &limit).await
    );
    let cancel = p.signal(&token, json!({ "action": "cancel" })).await;
    assert_eq!(p.settled(&cancel).await, "rejected");
    assert!(
        reject_reason(&p, &cancel)
            .await
            .unwrap()
            .contains("action cancel")
    );
    assert!(p.exchange_orders(&key).is_empty());
    // A v1 signal still trades.
    let buy = p
        .signal(&token, json!({ "action": "buy", "quantity": "1" }))
        .await;
    assert_eq!(p.settled(&buy).await, "done");
}
