//! Each fault switch of `POST /paper/faults`, and `DELETE /paper/faults`.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::common::{Signing, Ws, start};

#[tokio::test]
async fn latency_fault_delays_matching_requests_for_count() {
    let h = start().await;
    let account = h.account().await;
    h.fault(json!({"kind": "latency", "ms": 300, "path": "/v5/order/create", "count": 1}))
        .await;
    let other_path = Instant::now();
    account.get("/v5/account/info", "").await;
    assert!(
        other_path.elapsed() < Duration::from_millis(300),
        "other paths are not delayed"
    );
    let started = Instant::now();
    assert_eq!(account.market("Buy", "1", "lat-1").await.ret_code(), 0);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "delayed {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert_eq!(account.market("Buy", "1", "lat-2").await.ret_code(), 0);
    assert!(started.elapsed() < Duration::from_millis(300), "count used up");
}

#[tokio::test]
async fn http_error_fault_before_and_after_placing() {
    let h = start().await;
    let account = h.account().await;
    h.fault(json!({"kind": "order_create_http_error", "count": 1, "status": 503}))
        .await;
    let reply = account.market("Buy", "1", "h-1").await;
    assert_eq!(reply.status, 503);
    assert!(
        h.running.exchange().orders(&account.key).unwrap().is_empty(),
        "not placed"
    );

    h.fault(json!({"kind": "order_create_http_error", "count": 1, "after_placing": true}))
        .await;
    let reply = account.market("Buy", "1", "h-2").await;
    assert_eq!(reply.status, 500);
    // The ambiguous case: the order exists and a retry with the same orderLinkId proves it.
    assert_eq!(account.order_by_link("h-2").await["orderStatus"], "Filled");
    assert_eq!(account.market("Buy", "1", "h-2").await.ret_code(), 110072);
    assert_eq!(
        account.market("Buy", "1", "h-3").await.ret_code(),
        0,
        "fault used up"
    );
}

#[tokio::test]
async fn timeout_fault_holds_the_request_past_the_client_timeout() {
    let h = start().await;
    let account = h.account().await;
    h.fault(json!({"kind": "order_create_timeout", "count": 1, "hold_ms": 5000, "after_placing": true}))
        .await;
    let body = json!({"category": "linear", "symbol": "AVAXUSDT", "side": "Buy", "orderType": "Market",
                      "qty": "1", "orderLinkId": "t-1"})
    .to_string();
    let outcome = account
        .request_with_timeout(
            Method::POST,
            "/v5/order/create",
            &body,
            Signing::default(),
            Duration::from_millis(300),
        )
        .await;
    assert!(outcome.is_err_and(|e| e.is_timeout()));
    assert_eq!(
        account.order_by_link("t-1").await["orderStatus"],
        "Filled",
        "placed before the hold"
    );

    h.fault(json!({"kind": "order_create_timeout", "count": 1, "hold_ms": 5000}))
        .await;
    let body = body.replace("t-1", "t-2");
    let outcome = account
        .request_with_timeout(
            Method::POST,
            "/v5/order/create",
            &body,
            Signing::default(),
            Duration::from_millis(300),
        )
        .await;
    assert!(outcome.is_err_and(|e| e.is_timeout()));
    let missing = account
        .get("/v5/order/realtime", "category=linear&orderLinkId=t-2")
        .await;
    assert_eq!(missing.body["result"]["list"], json!([]), "not placed");
}

#[tokio::test]
async fn ret_code_fault_answers_a_bybit_error() {
    let h = start().await;
    let account = h.account().await;
    h.fault(json!({"kind": "order_create_ret_code", "count": 1, "ret_code": 10016, "after_placing": true}))
        .await;
    let reply = account.market("Buy", "1", "rc-1").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.ret_code(), 10016);
    assert_eq!(account.order_by_link("rc-1").await["orderStatus"], "Filled");
}

#[tokio::test]
async fn rate_limit_burst_answers_10006_for_count_creates() {
    let h = start().await;
    let account = h
        .account_with(json!({"order_create_limit_per_second": 1000}))
        .await;
    let other = h
        .account_with(json!({"order_create_limit_per_second": 1000}))
        .await;
    h.fault(json!({"kind": "rate_limit_burst", "count": 3, "api_key": account.key}))
        .await;
    assert_eq!(
        other.market("Buy", "1", "rb-other").await.ret_code(),
        0,
        "other accounts unaffected"
    );
    for i in 0..3 {
        let reply = account.market("Buy", "1", &format!("rb-{i}")).await;
        assert_eq!(reply.ret_code(), 10006);
        assert_eq!(reply.header("X-Bapi-Limit-Status").as_deref(), Some("0"));
    }
    assert_eq!(account.market("Buy", "1", "rb-3").await.ret_code(), 0);
    assert_eq!(h.running.exchange().orders(&account.key).unwrap().len(), 1);
}

#[tokio::test]
async fn drop_ws_connections_closes_the_matching_connections() {
    let h = start().await;
    let victim = h.account().await;
    let bystander = h.account().await;
    let mut victim_ws = Ws::connect(&h.ws_url()).await;
    victim_ws.auth_and_subscribe(&victim, &["order"]).await;
    let mut bystander_ws = Ws::connect(&h.ws_url()).await;
    bystander_ws.auth_and_subscribe(&bystander, &["order"]).await;

    h.fault(json!({"kind": "drop_ws_connections", "api_key": victim.key}))
        .await;
    victim_ws.expect_closed().await;
    bystander_ws.send(json!({"req_id": "still", "op": "ping"})).await;
    assert_eq!(bystander_ws.next_json().await["op"], "pong");

    h.fault(json!({"kind": "drop_ws_connections"})).await;
    bystander_ws.expect_closed().await;
    let (_, active) = h.control(Method::GET, "/paper/faults", None).await;
    assert_eq!(active, json!([]), "a drop is applied at once, not kept");
}

#[tokio::test]
async fn delay_pushes_holds_matching_topics() {
    let h = start().await;
    let account = h.account().await;
    let mut ws = Ws::connect(&h.ws_url()).await;
    ws.auth_and_subscribe(&account, &["order", "execution"]).await;
    h.fault(json!({"kind": "delay_pushes", "ms": 400, "topics": ["order"], "count": 1}))
        .await;
    let placed = Instant::now();
    assert_eq!(account.market("Buy", "1", "d-1").await.ret_code(), 0);
    let first = ws.next_json().await;
    assert_eq!(first["topic"], "execution", "undelayed topic first");
    let order = ws.next_json().await;
    assert_eq!(order["topic"], "order");
    assert!(
        placed.elapsed() >= Duration::from_millis(400),
        "order push after {:?}",
        placed.elapsed()
    );
}

#[tokio::test]
async fn withhold_pushes_drops_matching_pushes_then_clears() {
    let h = start().await;
    let account = h.account().await;
    let mut ws = Ws::connect(&h.ws_url()).await;
    ws.auth_and_subscribe(&account, &["order", "execution"]).await;
    h.fault(json!({"kind": "withhold_pushes", "topics": ["execution"]}))
        .await;
    assert_eq!(account.market("Buy", "1", "w-1").await.ret_code(), 0);
    assert_eq!(ws.next_json().await["topic"], "order");
    assert!(
        ws.next_json_within(Duration::from_millis(300)).await.is_err(),
        "execution withheld"
    );

    let (status, cleared) = h.control(Method::DELETE, "/paper/faults", None).await;
    assert_eq!(status, 200);
    assert_eq!(cleared["cleared"], 1);
    assert_eq!(account.market("Buy", "1", "w-2").await.ret_code(), 0);
    let first = ws.next_json().await;
    assert_eq!(first["topic"], "execution");
    assert_eq!(first["data"][0]["orderLinkId"], "w-2");
}

#[tokio::test]
async fn faults_are_validated_and_listed() {
    let h = start().await;
    let (status, error) = h
        .control(Method::POST, "/paper/faults", Some(json!({"kind": "nope"})))
        .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"], "invalid_body");
    let (status, error) = h
        .control(
            Method::POST,
            "/paper/faults",
            Some(json!({"kind": "rate_limit_burst", "count": 0})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"], "invalid_fault");
    let (status, _) = h
        .control(
            Method::POST,
            "/paper/faults",
            Some(json!({"kind": "withhold_pushes", "topics": ["orders"]})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = h
        .control(
            Method::POST,
            "/paper/faults",
            Some(json!({"kind": "order_create_http_error", "count": 1, "status": 404})),
        )
        .await;
    assert_eq!(status, 400);
    let added = h.fault(json!({"kind": "rate_limit_burst", "count": 2})).await;
    assert_eq!(added["remaining"], 2);
    assert!(added["id"].is_string());
    let (_, listed) = h.control(Method::GET, "/paper/faults", None).await;
    assert_eq!(listed[0]["kind"], "rate_limit_burst");
}

#[tokio::test]
async fn order_push_first_reorders_one_fill() {
    let h = start().await;
    let account = h.account().await;
    let mut ws = Ws::connect(&h.ws_url()).await;
    ws.auth_and_subscribe(&account, &["order", "execution"]).await;
    h.fault(json!({"kind": "order_push_first", "count": 1})).await;
    assert_eq!(account.market("Buy", "1", "op-1").await.ret_code(), 0);
    assert_eq!(ws.next_json().await["topic"], "order");
    assert_eq!(ws.next_json().await["topic"], "execution");
    assert_eq!(account.market("Buy", "1", "op-2").await.ret_code(), 0);
    assert_eq!(
        ws.next_json().await["topic"],
        "execution",
        "back to the usual order"
    );
    assert_eq!(ws.next_json().await["topic"], "order");
}
