use std::str::FromStr;
use std::time::Duration;

use humbex_bybit::{
    BybitError, BybitRest, BybitRestConfig, CreateOrderRequest, Credentials, ExecutionFilter, OrderLinkId,
    OrderStatus, Side, evaluate_api_key,
};
use rust_decimal::Decimal;
use secrecy::SecretString;
use serde_json::json;

use crate::common::{Harness, SYMBOL};

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn market_buy(qty: &str, link_id: &str) -> CreateOrderRequest {
    CreateOrderRequest::market(SYMBOL, Side::Buy, dec(qty), OrderLinkId::parse(link_id).unwrap())
}

#[tokio::test]
async fn market_order_is_placed_and_read_back_by_order_link_id() {
    let h = Harness::start().await;
    let creds = h.account("k-basic", "10000").await;

    let ack = h
        .rest
        .create_order(&creds, &market_buy("1", "basic-1"))
        .await
        .unwrap();
    assert_eq!(ack.value.order_link_id, "basic-1");
    assert_eq!(ack.rate_limit.limit, Some(10));
    assert!(ack.rate_limit.remaining.is_some());
    assert!(ack.rate_limit.reset_at_ms.is_some());

    let link_id = OrderLinkId::parse("basic-1").unwrap();
    let order = h
        .rest
        .get_order_by_link_id(&creds, SYMBOL, &link_id)
        .await
        .unwrap()
        .value
        .expect("order found");
    assert_eq!(order.order_id, ack.value.order_id);
    assert_eq!(order.order_status, OrderStatus::Filled);
    assert_eq!(order.cum_exec_qty, dec("1"));
    assert!(order.avg_price.is_some());

    let fills = h
        .rest
        .execution_list(&creds, SYMBOL, &ExecutionFilter::OrderLinkId(link_id.clone()))
        .await
        .unwrap()
        .value;
    assert_eq!(fills.len(), 1);
    assert_eq!(fills[0].exec_qty, dec("1"));
    let by_id = h
        .rest
        .execution_list(
            &creds,
            SYMBOL,
            &ExecutionFilter::OrderId(ack.value.order_id.clone()),
        )
        .await
        .unwrap()
        .value;
    assert_eq!(by_id, fills);

    let positions = h.rest.position_list(&creds, SYMBOL).await.unwrap().value;
    assert_eq!(positions[0].side, Some(Side::Buy));
    assert_eq!(positions[0].size, dec("1"));

    let missing = OrderLinkId::parse("never-sent").unwrap();
    let none = h
        .rest
        .get_order_by_link_id(&creds, SYMBOL, &missing)
        .await
        .unwrap();
    assert!(none.value.is_none());
}

#[tokio::test]
async fn market_data_wallet_and_key_endpoints() {
    let h = Harness::start().await;
    let creds = h.account("k-data", "2500").await;

    let time = h.rest.server_time().await.unwrap();
    assert!(time.value.millis() > 0);
    let instrument = h
        .rest
        .instruments_info(SYMBOL)
        .await
        .unwrap()
        .value
        .expect("listed");
    assert_eq!(instrument.lot_size_filter.qty_step, dec("0.1"));
    assert_eq!(instrument.lot_size_filter.min_order_qty, dec("0.1"));
    assert_eq!(instrument.price_filter.tick_size, dec("0.001"));
    assert!(h.rest.instruments_info("NOPEUSDT").await.unwrap().value.is_none());
    let ticker = h.rest.ticker(SYMBOL).await.unwrap().value.expect("listed");
    assert_eq!(ticker.last_price, dec("25"));

    let wallet = h.rest.wallet_balance(&creds).await.unwrap().value;
    let usdt = wallet[0].coin.iter().find(|c| c.coin == "USDT").expect("USDT");
    assert_eq!(usdt.wallet_balance, Some(dec("2500")));

    let key = h.rest.query_api(&creds).await.unwrap().value;
    let verdict = evaluate_api_key(&key);
    assert!(verdict.is_acceptable(), "{}", verdict.message());
    // The paper exchange creates keys without an IP binding unless told otherwise.
    assert!(!verdict.ip_bound);
}

#[tokio::test]
async fn key_check_refuses_read_only_and_withdraw_keys_from_the_exchange() {
    let h = Harness::start().await;
    let read_only = h
        .account_with(json!({"api_key": "k-ro", "read_only": true, "ips": ["127.0.0.1"]}))
        .await;
    let verdict = evaluate_api_key(&h.rest.query_api(&read_only).await.unwrap().value);
    assert!(!verdict.is_acceptable());
    assert!(verdict.message().contains("read-only"), "{}", verdict.message());
    assert!(verdict.ip_bound);

    let withdraw = h
        .account_with(json!({"api_key": "k-wd", "permissions": {
            "ContractTrade": ["Order", "Position"], "Wallet": ["Withdraw"]}}))
        .await;
    let verdict = evaluate_api_key(&h.rest.query_api(&withdraw).await.unwrap().value);
    assert!(
        verdict.message().contains("Wallet:Withdraw"),
        "{}",
        verdict.message()
    );
}

#[tokio::test]
async fn key_bound_to_another_ip_is_key_unusable() {
    let h = Harness::start().await;
    let elsewhere = h
        .account_with(json!({"api_key": "k-ip", "ips": ["203.0.113.10"]}))
        .await;
    let err = h.rest.query_api(&elsewhere).await.unwrap_err();
    assert!(
        matches!(err, BybitError::KeyUnusable { code: 10010, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn duplicate_order_link_id_is_classified() {
    let h = Harness::start().await;
    let creds = h.account("k-dup", "10000").await;
    h.rest
        .create_order(&creds, &market_buy("1", "dup-1"))
        .await
        .unwrap();
    let err = h
        .rest
        .create_order(&creds, &market_buy("1", "dup-1"))
        .await
        .unwrap_err();
    assert!(matches!(err, BybitError::DuplicateOrderLinkId { .. }), "{err:?}");
    assert!(err.requires_order_lookup());
    assert_eq!(h.paper_orders("k-dup").await.len(), 1);
}

#[tokio::test]
async fn bad_secret_and_unknown_key_are_key_unusable() {
    let h = Harness::start().await;
    h.account("k-sec", "10000").await;
    let wrong_secret = Credentials::new("k-sec", SecretString::from("not-the-secret"));
    let err = h
        .rest
        .create_order(&wrong_secret, &market_buy("1", "sec-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BybitError::KeyUnusable { code: 10004, .. }),
        "{err:?}"
    );
    assert!(err.key_unusable() && !err.is_retryable());

    let unknown = Credentials::new("k-nobody", SecretString::from("whatever"));
    let err = h.rest.wallet_balance(&unknown).await.unwrap_err();
    assert!(
        matches!(err, BybitError::KeyUnusable { code: 10003, .. }),
        "{err:?}"
    );
    assert!(h.paper_orders("k-sec").await.is_empty());
}

#[tokio::test]
async fn insufficient_balance_is_rejected() {
    let h = Harness::start().await;
    let creds = h.account("k-poor", "10").await;
    let err = h
        .rest
        .create_order(&creds, &market_buy("100", "poor-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BybitError::Rejected { code: 110007, .. }),
        "{err:?}"
    );
    assert!(err.is_definitive() && !err.is_retryable());
}

#[tokio::test]
async fn bad_quantity_is_rejected_with_params_error() {
    let h = Harness::start().await;
    let creds = h.account("k-qty", "10000").await;
    let err = h
        .rest
        .create_order(&creds, &market_buy("0.05", "qty-1"))
        .await
        .unwrap_err();
    assert!(matches!(err, BybitError::Rejected { code: 10001, .. }), "{err:?}");
}

#[tokio::test]
async fn server_error_after_placement_is_ambiguous_and_lookup_finds_exactly_one_order() {
    let h = Harness::start().await;
    let creds = h.account("k-5xx", "10000").await;
    h.fault(json!({"kind": "order_create_http_error", "count": 1, "status": 503, "after_placing": true}))
        .await;

    let err = h
        .rest
        .create_order(&creds, &market_buy("1", "amb-1"))
        .await
        .unwrap_err();
    assert!(matches!(err, BybitError::Ambiguous { .. }), "{err:?}");
    assert!(err.requires_order_lookup() && err.is_retryable());

    let link_id = OrderLinkId::parse("amb-1").unwrap();
    let found = h
        .rest
        .get_order_by_link_id(&creds, SYMBOL, &link_id)
        .await
        .unwrap();
    assert_eq!(found.value.expect("the order landed").order_link_id, "amb-1");

    // An idempotent retry under the same id cannot create a second order.
    let retry = h
        .rest
        .create_order(&creds, &market_buy("1", "amb-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(retry, BybitError::DuplicateOrderLinkId { .. }),
        "{retry:?}"
    );
    assert_eq!(h.paper_orders("k-5xx").await.len(), 1);
}

#[tokio::test]
async fn timeout_after_placement_is_ambiguous() {
    let h = Harness::start_with(|config| BybitRestConfig {
        request_timeout: Duration::from_millis(300),
        ..config
    })
    .await;
    let creds = h.account("k-slow", "10000").await;
    h.fault(json!({"kind": "order_create_timeout", "count": 1, "hold_ms": 5000, "after_placing": true}))
        .await;
    let err = h
        .rest
        .create_order(&creds, &market_buy("1", "slow-1"))
        .await
        .unwrap_err();
    assert!(matches!(err, BybitError::Ambiguous { .. }), "{err:?}");
    let link_id = OrderLinkId::parse("slow-1").unwrap();
    let found = h
        .rest
        .get_order_by_link_id(&creds, SYMBOL, &link_id)
        .await
        .unwrap();
    assert!(found.value.is_some());
}

#[tokio::test]
async fn rate_limit_burst_is_rate_limited_and_places_nothing() {
    let h = Harness::start().await;
    let creds = h.account("k-burst", "10000").await;
    h.fault(json!({"kind": "rate_limit_burst", "count": 3})).await;
    for _ in 0..3 {
        let err = h
            .rest
            .create_order(&creds, &market_buy("1", "burst-1"))
            .await
            .unwrap_err();
        assert!(matches!(err, BybitError::RateLimited { .. }), "{err:?}");
        assert!(err.is_retryable() && !err.requires_order_lookup());
        assert!(err.retry_after().unwrap() <= Duration::from_secs(5));
    }
    assert!(h.paper_orders("k-burst").await.is_empty());
    h.rest
        .create_order(&creds, &market_buy("1", "burst-1"))
        .await
        .unwrap();
    assert_eq!(h.paper_orders("k-burst").await.len(), 1);
}

#[tokio::test]
async fn connection_refused_is_transient() {
    // Bind then drop a listener to get a port that nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rest = BybitRest::new(format!("http://127.0.0.1:{port}")).unwrap();
    let creds = Credentials::new("k", SecretString::from("s"));
    let err = rest
        .create_order(&creds, &market_buy("1", "x-1"))
        .await
        .unwrap_err();
    assert!(matches!(err, BybitError::Transient { .. }), "{err:?}");
}
