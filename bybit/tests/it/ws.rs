use std::str::FromStr;

use humbex_bybit::{
    CreateOrderRequest, Credentials, OrderLinkId, OrderStatus, PrivateStream, Side, StreamEvent,
};
use rust_decimal::Decimal;
use secrecy::SecretString;
use serde_json::json;

use crate::common::{Harness, SYMBOL, next_matching};

fn market_buy(link_id: &str) -> CreateOrderRequest {
    CreateOrderRequest::market(
        SYMBOL,
        Side::Buy,
        Decimal::from_str("2").unwrap(),
        OrderLinkId::parse(link_id).unwrap(),
    )
}

#[tokio::test]
async fn private_stream_delivers_order_and_execution_pushes() {
    let h = Harness::start().await;
    let creds = h.account("k-ws", "10000").await;
    let (handle, mut events) = PrivateStream::spawn(h.stream_config(creds.clone()));
    let session = next_matching(&mut events, |e| match e {
        StreamEvent::Connected { session } => Some(session),
        _ => None,
    })
    .await;
    assert_eq!(session, 1);

    let ack = h
        .rest
        .create_order(&creds, &market_buy("ws-1"))
        .await
        .unwrap()
        .value;

    let mut filled = None;
    let mut fills = Vec::new();
    while filled.is_none() || fills.is_empty() {
        match next_matching(&mut events, Some).await {
            StreamEvent::OrderUpdate(order) if order.order_status == OrderStatus::Filled => {
                filled = Some(order)
            }
            StreamEvent::Execution(fill) => fills.push(fill),
            StreamEvent::OrderUpdate(_) => {}
            other => panic!("unexpected event {other:?}"),
        }
    }
    let order = filled.unwrap();
    assert_eq!(order.order_id, ack.order_id);
    assert_eq!(order.order_link_id, "ws-1");
    assert_eq!(order.cum_exec_qty, Decimal::from(2));
    assert_eq!(fills.len(), 1);
    assert_eq!(fills[0].order_link_id, "ws-1");
    assert_eq!(fills[0].exec_qty, Decimal::from(2));

    handle.shutdown().await;
    // After shutdown the channel ends instead of hanging.
    while events.recv().await.is_some() {}
}

#[tokio::test]
async fn dropped_websocket_reconnects_and_emits_connected_again() {
    let h = Harness::start().await;
    let creds = h.account("k-drop", "10000").await;
    let (handle, mut events) = PrivateStream::spawn(h.stream_config(creds.clone()));
    next_matching(&mut events, |e| {
        matches!(e, StreamEvent::Connected { session: 1 }).then_some(())
    })
    .await;

    h.fault(json!({"kind": "drop_ws_connections", "api_key": "k-drop"}))
        .await;
    let reason = next_matching(&mut events, |e| match e {
        StreamEvent::Disconnected { reason } => Some(reason),
        _ => None,
    })
    .await;
    assert!(!reason.is_empty());
    next_matching(&mut events, |e| {
        matches!(e, StreamEvent::Connected { session: 2 }).then_some(())
    })
    .await;

    // The new session is subscribed again: pushes arrive.
    h.rest.create_order(&creds, &market_buy("drop-1")).await.unwrap();
    let order = next_matching(&mut events, |e| match e {
        StreamEvent::OrderUpdate(order) => Some(order),
        _ => None,
    })
    .await;
    assert_eq!(order.order_link_id, "drop-1");
    handle.shutdown().await;
}

#[tokio::test]
async fn auth_failure_is_reported_not_retried_in_a_loop() {
    let h = Harness::start().await;
    h.account("k-wsbad", "10000").await;
    let wrong = Credentials::new("k-wsbad", SecretString::from("wrong-secret"));
    let (handle, mut events) = PrivateStream::spawn(h.stream_config(wrong));
    let message = next_matching(&mut events, |e| match e {
        StreamEvent::AuthFailed { message } => Some(message),
        StreamEvent::Connected { .. } => panic!("connected with a wrong secret"),
        _ => None,
    })
    .await;
    assert!(!message.is_empty());
    // The retry waits auth_failure_delay (30 s here): nothing else arrives meanwhile.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), events.recv())
            .await
            .is_err()
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn json_pings_keep_a_quiet_session_alive() {
    let h = Harness::start().await;
    let creds = h.account("k-ping", "10000").await;
    let config = humbex_bybit::PrivateStreamConfig {
        ping_interval: std::time::Duration::from_millis(50),
        // Without pongs the stream would declare the session dead after this much silence.
        silence_timeout: std::time::Duration::from_millis(200),
        ..h.stream_config(creds.clone())
    };
    let (handle, mut events) = PrivateStream::spawn(config);
    next_matching(&mut events, |e| {
        matches!(e, StreamEvent::Connected { session: 1 }).then_some(())
    })
    .await;
    // Several silence windows pass with no trading: only pongs flow, nothing is reported.
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(700), events.recv()).await;
    assert!(quiet.is_err(), "unexpected event {quiet:?}");

    h.rest.create_order(&creds, &market_buy("ping-1")).await.unwrap();
    let event = next_matching(&mut events, Some).await;
    assert!(
        matches!(&event, StreamEvent::OrderUpdate(_) | StreamEvent::Execution(_)),
        "{event:?}"
    );
    handle.shutdown().await;
}
