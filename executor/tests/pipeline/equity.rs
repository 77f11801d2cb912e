//! Sizing by equity reads what the private stream's `wallet` topic pushed, not the REST wallet
//! balance, and falls back to one REST read when the stream dropped (docs/trading-v2-executor.md#equity).
//! The paper exchange counts each account's wallet-balance requests: the witness for "no REST read".

use std::time::Duration;

use humbex_executor::confirm::Confirmer;
use humbex_executor::confirm::equity::Cached;
use humbex_paper_exchange::Fault;
use serde_json::json;
use uuid::Uuid;

use crate::harness::{Pipeline, wait_for};
use crate::v2::{d, send, sent_since};

const WALLET_BALANCE: &str = "/v5/account/wallet-balance";

/// The id HUMBEX gave the user's key, once the executor's stream for it is subscribed.
async fn subscribed_key(p: &Pipeline, confirmer: &Confirmer, user_id: &str) -> Uuid {
    let user: Uuid = user_id.parse().unwrap();
    let row = p
        .db()
        .await
        .query_one("SELECT id FROM api_keys WHERE user_id = $1", &[&user])
        .await
        .unwrap();
    let key_id: Uuid = row.get("id");
    connected(confirmer, key_id).await;
    key_id
}

async fn connected(confirmer: &Confirmer, key_id: Uuid) {
    wait_for(Duration::from_secs(20), || async {
        matches!(
            confirmer.stream_state(key_id),
            Some(humbex_executor::confirm::StreamState::Connected { .. })
        )
        .then_some(())
    })
    .await
    .expect("the account's private stream subscribed");
}

/// Wait until the executor's cache holds `equity` for the account (the push was applied).
async fn cached(confirmer: &Confirmer, key_id: Uuid, equity: &str) {
    let want = Cached::Fresh(d(equity));
    wait_for(Duration::from_secs(10), || async {
        (confirmer.equity().get(key_id) == want).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("equity {equity} not cached: {:?}", confirmer.equity().get(key_id)));
}

#[tokio::test]
async fn equity_sizing_follows_the_pushed_wallet_without_a_rest_read() {
    let p = Pipeline::start(1).await;
    let confirmer = p.confirmers[0].clone();
    let (user, token, key) = p.trader("pushed@example.com", json!({}), "10000").await;
    let key_id = subscribed_key(&p, &confirmer, &user).await;
    let exchange = p.paper.exchange();

    // A transfer in: the wallet topic pushes it.
    exchange.set_balance(&key, d("20000")).unwrap();
    cached(&confirmer, key_id, "20000").await;
    // 1% of 20000 = 200 USDT, × leverage 10 = 2000 USDT at 25 = 80 coins.
    send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "1", "quantity_type": "equity_percent", "id": "e1" }),
    )
    .await;
    assert_eq!(sent_since(&p, &key, 0), [("Buy".into(), d("80"), false)]);

    // With the position open, a transfer out: 1% of 5000 × 10 at 25 = 20 coins.
    exchange.set_balance(&key, d("5000")).unwrap();
    cached(&confirmer, key_id, "5000").await;
    send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "1", "quantity_type": "equity_percent", "id": "e2" }),
    )
    .await;
    assert_eq!(sent_since(&p, &key, 1), [("Buy".into(), d("20"), false)]);
    assert_eq!(exchange.requests(&key, WALLET_BALANCE), 0, "sizing asked REST");
}

#[tokio::test]
async fn equity_sizing_reads_rest_once_when_the_stream_dropped() {
    let p = Pipeline::start(1).await;
    let confirmer = p.confirmers[0].clone();
    let (user, token, key) = p.trader("dropped@example.com", json!({}), "10000").await;
    let key_id = subscribed_key(&p, &confirmer, &user).await;
    let exchange = p.paper.exchange();
    exchange.set_balance(&key, d("20000")).unwrap();
    cached(&confirmer, key_id, "20000").await;

    // The stream drops, and no wallet push reaches the executor from now on: the balance it had
    // must not be used.
    exchange
        .add_fault(Fault::WithholdPushes {
            topics: Some(vec!["wallet".into()]),
            api_key: Some(key.clone()),
            count: None,
        })
        .unwrap();
    exchange
        .add_fault(Fault::DropWsConnections {
            api_key: Some(key.clone()),
        })
        .unwrap();
    wait_for(Duration::from_secs(10), || async {
        matches!(confirmer.equity().get(key_id), Cached::Missing(_)).then_some(())
    })
    .await
    .expect("the drop forgot the pushed equity");
    exchange.set_balance(&key, d("30000")).unwrap();

    // 1% of 30000 (read over REST) × 10 at 25 = 120 coins.
    send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "1", "quantity_type": "equity_percent", "id": "f1" }),
    )
    .await;
    assert_eq!(sent_since(&p, &key, 0), [("Buy".into(), d("120"), false)]);
    assert_eq!(exchange.requests(&key, WALLET_BALANCE), 1);

    // Pushes flow again: the next balance change is used without asking.
    exchange.clear_faults();
    // (Pushes sent before the stream is subscribed again are lost, as on Bybit.)
    connected(&confirmer, key_id).await;
    exchange.set_balance(&key, d("10000")).unwrap();
    cached(&confirmer, key_id, "10000").await;
    send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "1", "quantity_type": "equity_percent", "id": "f2" }),
    )
    .await;
    assert_eq!(sent_since(&p, &key, 1), [("Buy".into(), d("40"), false)]);
    assert_eq!(exchange.requests(&key, WALLET_BALANCE), 1);
}
