//! Private WebSocket rules: auth, ping/pong, subscribe, push shapes, ack delay.

use std::time::{Duration, Instant};

use humbex_paper_exchange::signing::sign_ws_auth;
use serde_json::json;

use crate::common::{Ws, now_ms, start, start_with, test_config, topic_item};

#[tokio::test]
async fn pushes_every_topic_in_bybit_shape() {
    let h = start().await;
    let account = h.account().await;
    let mut ws = Ws::connect(&h.ws_url()).await;
    ws.auth_and_subscribe(
        &account,
        &["order", "execution", "execution.fast", "position", "wallet"],
    )
    .await;
    assert_eq!(account.market("Buy", "1", "ws-1").await.ret_code(), 0);

    let mut seen = std::collections::HashMap::new();
    while seen.len() < 5 {
        let message = ws.next_json().await;
        let topic = message["topic"].as_str().expect("push has a topic").to_string();
        assert!(message["creationTime"].as_i64().is_some(), "{message}");
        assert!(message["data"].is_array(), "{message}");
        seen.insert(topic, message);
    }
    let order = topic_item(&seen["order"], "order").unwrap();
    assert!(seen["order"]["id"].is_string());
    assert_eq!(order["category"], "linear");
    assert_eq!(order["orderLinkId"], "ws-1");
    assert_eq!(order["orderStatus"], "Filled");
    assert_eq!(order["cumExecQty"], "1.0");
    assert_eq!(order["leavesQty"], "0.0");
    assert_eq!(order["cumFeeDetail"]["USDT"], "0.01375");
    let execution = topic_item(&seen["execution"], "execution").unwrap();
    assert_eq!(execution["execType"], "Trade");
    assert_eq!(execution["execQty"], "1.0");
    assert_eq!(execution["execFee"], "0.01375");
    let fast = topic_item(&seen["execution.fast"], "execution.fast").unwrap();
    assert_eq!(fast["orderLinkId"], "ws-1");
    assert!(fast.get("execFee").is_none());
    let position = topic_item(&seen["position"], "position").unwrap();
    assert_eq!(position["size"], "1.0");
    assert_eq!(position["entryPrice"], "25");
    assert!(
        position.get("avgPrice").is_none(),
        "the stream names it entryPrice"
    );
    let wallet = topic_item(&seen["wallet"], "wallet").unwrap();
    assert_eq!(wallet["accountType"], "UNIFIED");
    assert_eq!(wallet["coin"][0]["coin"], "USDT");

    // Pushes go only to the account that caused them.
    let other = h.account().await;
    let mut other_ws = Ws::connect(&h.ws_url()).await;
    other_ws.auth_and_subscribe(&other, &["order"]).await;
    assert_eq!(account.market("Buy", "1", "ws-2").await.ret_code(), 0);
    ws.wait_for("second order push", |m| m["topic"] == "order").await;
    assert!(
        other_ws
            .next_json_within(Duration::from_millis(300))
            .await
            .is_err(),
        "no push to another account"
    );
}

#[tokio::test]
async fn categorised_topics_keep_their_name_and_cannot_mix() {
    let h = start().await;
    let account = h.account().await;
    let mut ws = Ws::connect(&h.ws_url()).await;
    assert_eq!(ws.auth(&account.key, &account.secret).await["success"], true);
    ws.send(json!({"req_id": "mix", "op": "subscribe", "args": ["order", "execution.linear"]}))
        .await;
    let refused = ws.wait_for("subscribe reply", |v| v["op"] == "subscribe").await;
    assert_eq!(refused["success"], false);
    assert_eq!(refused["req_id"], "mix");
    ws.send(json!({"req_id": 7, "op": "subscribe", "args": ["order.linear"]}))
        .await;
    let ack = ws.wait_for("subscribe ack", |v| v["op"] == "subscribe").await;
    assert_eq!(ack["success"], true);
    assert_eq!(ack["req_id"], 7, "req_id echoed unchanged, numbers included");
    assert_eq!(account.market("Sell", "1", "cat-1").await.ret_code(), 0);
    let push = ws.wait_for("order push", |v| v.get("topic").is_some()).await;
    assert_eq!(push["topic"], "order.linear");
}

#[tokio::test]
async fn subscribe_before_auth_is_refused() {
    let h = start().await;
    let mut ws = Ws::connect(&h.ws_url()).await;
    ws.send(json!({"req_id": "early", "op": "subscribe", "args": ["order"]}))
        .await;
    let reply = ws.next_json().await;
    assert_eq!(reply["op"], "subscribe");
    assert_eq!(reply["success"], false);
    assert_eq!(reply["ret_msg"], "Request not authorized");
    assert!(reply["conn_id"].is_string());
}

#[tokio::test]
async fn auth_failures_answer_success_false() {
    let h = start().await;
    let account = h.account().await;
    let mut ws = Ws::connect(&h.ws_url()).await;

    let expires = now_ms() + 10_000;
    ws.send(json!({"op": "auth", "args": [account.key, expires, sign_ws_auth("wrong", expires)]}))
        .await;
    let bad_sign = ws.next_json().await;
    assert_eq!(bad_sign["op"], "auth");
    assert_eq!(bad_sign["success"], false);

    let expired = now_ms() - 1;
    ws.send(json!({"op": "auth", "args": [account.key, expired, sign_ws_auth(&account.secret, expired)]}))
        .await;
    let reply = ws.next_json().await;
    assert_eq!(reply["success"], false);
    assert_eq!(reply["ret_msg"], "Params Error");

    ws.send(json!({"op": "auth", "args": ["nobody", expires, sign_ws_auth("x", expires)]}))
        .await;
    assert_eq!(ws.next_json().await["success"], false);

    // Still unauthenticated: private topics stay closed.
    ws.send(json!({"op": "subscribe", "args": ["order"]})).await;
    assert_eq!(ws.next_json().await["ret_msg"], "Request not authorized");

    // ccxt sends expires as a string; that works too.
    let expires = (now_ms() + 10_000).to_string();
    let sig = sign_ws_auth(&account.secret, expires.parse().unwrap());
    ws.send(json!({"req_id": "a", "op": "auth", "args": [account.key, expires, sig]}))
        .await;
    let ok = ws.next_json().await;
    assert_eq!(ok["success"], true, "{ok}");
    assert_eq!(ok["ret_msg"], "");
    assert_eq!(ok["req_id"], "a");
}

#[tokio::test]
async fn ping_pong_echoes_req_id() {
    let h = start().await;
    let mut ws = Ws::connect(&h.ws_url()).await;
    ws.send(json!({"req_id": "p1", "op": "ping"})).await;
    let pong = ws.next_json().await;
    assert_eq!(pong["op"], "pong");
    assert_eq!(pong["req_id"], "p1");
    let ts: i64 = pong["args"][0].as_str().unwrap().parse().unwrap();
    assert!((ts - now_ms()).abs() < 5_000);
    ws.send(json!({"op": "ping"})).await;
    let pong = ws.next_json().await;
    assert!(pong.get("req_id").is_none());
    // pybit also sends WebSocket protocol pings and drops the connection without their pongs.
    assert_eq!(ws.protocol_ping(b"hb").await, b"hb".to_vec());
}

#[tokio::test]
async fn subscribe_ack_waits_for_the_configured_delay() {
    let config = humbex_paper_exchange::PaperExchangeConfig {
        ws_subscribe_ack_delay: Duration::from_millis(250),
        ..test_config()
    };
    let h = start_with(config).await;
    let account = h.account().await;
    let mut ws = Ws::connect(&h.ws_url()).await;
    assert_eq!(ws.auth(&account.key, &account.secret).await["success"], true);
    let sent = Instant::now();
    ws.send(json!({"req_id": "slow", "op": "subscribe", "args": ["order"]}))
        .await;
    let ack = ws.next_json().await;
    assert_eq!(ack["success"], true);
    assert!(
        sent.elapsed() >= Duration::from_millis(250),
        "ack after {:?}",
        sent.elapsed()
    );
}

#[tokio::test]
async fn unsubscribe_stops_pushes() {
    let h = start().await;
    let account = h.account().await;
    let mut ws = Ws::connect(&h.ws_url()).await;
    ws.auth_and_subscribe(&account, &["order"]).await;
    ws.send(json!({"req_id": "u", "op": "unsubscribe", "args": ["order"]}))
        .await;
    let ack = ws.next_json().await;
    assert_eq!(ack["op"], "unsubscribe");
    assert_eq!(ack["success"], true);
    assert_eq!(account.market("Buy", "1", "un-1").await.ret_code(), 0);
    assert!(
        ws.next_json_within(Duration::from_millis(300)).await.is_err(),
        "no push after unsubscribe"
    );
}

#[tokio::test]
async fn set_price_fills_push_to_the_resting_order_owner() {
    let h = start().await;
    let account = h.account().await;
    let mut ws = Ws::connect(&h.ws_url()).await;
    ws.auth_and_subscribe(&account, &["order", "execution"]).await;
    let resting = account
        .create(json!({"side": "Sell", "orderType": "Limit", "qty": "1", "price": "26.000", "orderLinkId": "sp-1"}))
        .await;
    assert_eq!(resting.ret_code(), 0);
    let new = ws.wait_for("New order push", |m| m["topic"] == "order").await;
    assert_eq!(new["data"][0]["orderStatus"], "New");
    h.set_price("AVAXUSDT", "26.5").await;
    let fill = ws
        .wait_for("maker execution", |m| m["topic"] == "execution")
        .await;
    assert_eq!(fill["data"][0]["isMaker"], true);
    assert_eq!(fill["data"][0]["execPrice"], "26.000");
    let filled = ws.wait_for("Filled order push", |m| m["topic"] == "order").await;
    assert_eq!(filled["data"][0]["orderStatus"], "Filled");
}

#[tokio::test]
async fn public_ticker_stream_snapshots_on_subscribe_and_on_every_price_change() {
    let h = start().await;
    let mut ws = Ws::connect(&h.running.public_ws_url()).await;
    ws.send(json!({"op": "subscribe", "req_id": "t1", "args": ["tickers.AVAXUSDT"]}))
        .await;
    let ack = ws.wait_for("subscribe ack", |v| v["op"] == "subscribe").await;
    assert_eq!(ack["success"], true, "{ack}");
    assert_eq!(ack["req_id"], "t1");
    let first = ws
        .wait_for("first ticker", |v| v["topic"] == "tickers.AVAXUSDT")
        .await;
    assert_eq!(first["type"], "snapshot");
    assert_eq!(first["data"]["lastPrice"], "25.000");
    h.set_price("BTCUSDT", "61000").await;
    h.set_price("AVAXUSDT", "26.5").await;
    let moved = ws
        .wait_for("ticker after the move", |v| v["topic"] == "tickers.AVAXUSDT")
        .await;
    assert_eq!(moved["data"]["markPrice"], "26.500");
    assert!(moved["cs"].as_u64().unwrap() > first["cs"].as_u64().unwrap());
    ws.send(json!({"op": "ping"})).await;
    let pong = ws.wait_for("pong", |v| v["op"] == "ping").await;
    assert_eq!(pong["ret_msg"], "pong");
    ws.send(json!({"op": "subscribe", "args": ["tickers.NOPEUSDT"]}))
        .await;
    let refused = ws.wait_for("refusal", |v| v["op"] == "subscribe").await;
    assert_eq!(refused["success"], false);
}
