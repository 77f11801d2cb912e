//! The trading-language calls against the real paper exchange: limit and conditional orders with
//! attached TP/SL, cancel and cancel-all, leverage, margin and position mode, trading-stop, the
//! USDT balance, instrument rules and tickers; and the position, wallet and exchange-created order
//! pushes on the private stream.

use std::str::FromStr;

use humbex_bybit::{
    BybitError, CreateOrderRequest, CreateType, MarginMode, OrderLinkId, OrderRef, OrderStatus, PositionMode,
    PrivateStream, PrivateTopic, SettingOutcome, Side, StreamEvent, TimeInForce, TradingStopRequest,
    TriggerDirection,
};
use rust_decimal::Decimal;

use crate::common::{Harness, SYMBOL, next_matching};

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn id(text: &str) -> OrderLinkId {
    OrderLinkId::parse(text).unwrap()
}

#[tokio::test]
async fn limit_conditional_cancel_and_cancel_all() {
    let h = Harness::start().await;
    let creds = h.account("k-limits", "10000").await;
    let post_only = CreateOrderRequest::limit(SYMBOL, Side::Buy, dec("1"), dec("24"), id("lim-1"))
        .time_in_force(TimeInForce::PostOnly)
        .take_profit(dec("28"))
        .stop_loss(dec("22"));
    h.rest.create_order(&creds, &post_only).await.unwrap();
    let conditional = CreateOrderRequest::market(SYMBOL, Side::Buy, dec("1"), id("cond-1"))
        .trigger(dec("27"), TriggerDirection::towards(dec("27"), dec("25")));
    h.rest.create_order(&creds, &conditional).await.unwrap();
    let second = CreateOrderRequest::limit(SYMBOL, Side::Buy, dec("1"), dec("23"), id("lim-2"));
    h.rest.create_order(&creds, &second).await.unwrap();

    let open = h.rest.open_orders(&creds, SYMBOL).await.unwrap();
    assert_eq!(open.len(), 3);
    let resting = open.iter().find(|o| o.order_link_id == "lim-1").unwrap();
    assert_eq!(resting.order_status, OrderStatus::New);
    assert_eq!(resting.time_in_force, "PostOnly");
    assert_eq!(resting.take_profit, Some(dec("28")));
    assert_eq!(resting.stop_loss, Some(dec("22")));
    assert_eq!(resting.create_type, Some(CreateType::CreateByUser));
    let waiting = open.iter().find(|o| o.order_link_id == "cond-1").unwrap();
    assert_eq!(waiting.order_status, OrderStatus::Untriggered);
    assert_eq!(waiting.trigger_price, Some(dec("27")));
    assert_eq!(waiting.trigger_direction, 1);

    let cancelled = h
        .rest
        .cancel_order(&creds, SYMBOL, &OrderRef::OrderLinkId(id("lim-2")))
        .await
        .unwrap();
    assert_eq!(cancelled.value.order_link_id, "lim-2");
    let again = h
        .rest
        .cancel_order(
            &creds,
            SYMBOL,
            &OrderRef::OrderId(cancelled.value.order_id.clone()),
        )
        .await;
    assert!(
        matches!(again, Err(BybitError::Rejected { code: 110001, .. })),
        "{again:?}"
    );

    let all = h.rest.cancel_all_orders(&creds, SYMBOL).await.unwrap().value;
    let mut links: Vec<&str> = all.iter().map(|a| a.order_link_id.as_str()).collect();
    links.sort();
    assert_eq!(links, vec!["cond-1", "lim-1"]);
    assert!(h.rest.open_orders(&creds, SYMBOL).await.unwrap().is_empty());
    let record = h.paper_orders("k-limits").await;
    let statuses: Vec<&str> = record.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, vec!["Cancelled", "Deactivated", "Cancelled"]);
}

#[tokio::test]
async fn settings_report_changed_or_already_set() {
    let h = Harness::start().await;
    let creds = h.account("k-settings", "10000").await;
    let set = |lev: &str| h.rest.set_leverage(&creds, SYMBOL, dec(lev));
    assert_eq!(set("5").await.unwrap().value, SettingOutcome::Changed);
    assert_eq!(set("5").await.unwrap().value, SettingOutcome::AlreadySet);
    assert!(matches!(
        set("500").await,
        Err(BybitError::Rejected { code: 10001, .. })
    ));
    let position = &h.rest.position_list(&creds, SYMBOL).await.unwrap().value[0];
    assert_eq!(position.leverage, Some(dec("5")));

    let margin = h
        .rest
        .set_margin_mode(&creds, MarginMode::IsolatedMargin)
        .await
        .unwrap();
    assert_eq!(margin.value, SettingOutcome::Changed);
    let info = h.rest.account_info(&creds).await.unwrap().value;
    assert_eq!(info.margin_mode, MarginMode::IsolatedMargin);

    let mode = |m| h.rest.switch_position_mode(&creds, SYMBOL, m);
    assert_eq!(
        mode(PositionMode::OneWay).await.unwrap().value,
        SettingOutcome::AlreadySet
    );
    assert_eq!(
        mode(PositionMode::Hedge).await.unwrap().value,
        SettingOutcome::Changed
    );
    assert_eq!(
        mode(PositionMode::OneWay).await.unwrap().value,
        SettingOutcome::Changed
    );
}

#[tokio::test]
async fn trading_stop_balance_rules_and_tickers() {
    let h = Harness::start().await;
    let creds = h.account("k-stops", "1000").await;
    let balance = h.rest.usdt_balance(&creds).await.unwrap().value.unwrap();
    assert_eq!(balance.equity, dec("1000"));
    assert_eq!(balance.available_balance, dec("1000"));

    let buy = CreateOrderRequest::market(SYMBOL, Side::Buy, dec("2"), id("stop-open"));
    h.rest.create_order(&creds, &buy).await.unwrap();
    let stops = TradingStopRequest {
        symbol: SYMBOL.into(),
        take_profit: Some(dec("30")),
        stop_loss: Some(dec("23")),
        trailing_stop: Some(dec("1.5")),
        ..Default::default()
    };
    let outcome = h.rest.set_trading_stop(&creds, &stops).await.unwrap();
    assert_eq!(outcome.value, SettingOutcome::Changed);
    let position = &h.rest.position_list(&creds, SYMBOL).await.unwrap().value[0];
    assert_eq!(position.take_profit, Some(dec("30")));
    assert_eq!(position.stop_loss, Some(dec("23")));
    assert_eq!(position.trailing_stop, Some(dec("1.5")));
    assert_eq!(position.mark_price, Some(dec("25")));
    assert_eq!(position.liq_price, None);

    h.paper.exchange().set_price(SYMBOL, dec("26")).unwrap();
    let position = &h.rest.position_list(&creds, SYMBOL).await.unwrap().value[0];
    assert_eq!(position.unrealised_pnl, Some(dec("2")));
    let balance = h.rest.usdt_balance(&creds).await.unwrap().value.unwrap();
    assert_eq!(balance.unrealised_pnl, dec("2"));
    assert_eq!(balance.equity, balance.wallet_balance + dec("2"));
    let open = h.rest.open_positions(&creds).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].size, dec("2"));

    // Cancelling with zero; a flat position is refused by Bybit with 10001.
    let cancel_tp = TradingStopRequest {
        symbol: SYMBOL.into(),
        take_profit: Some(Decimal::ZERO),
        ..Default::default()
    };
    h.rest.set_trading_stop(&creds, &cancel_tp).await.unwrap();
    let position = &h.rest.position_list(&creds, SYMBOL).await.unwrap().value[0];
    assert_eq!(position.take_profit, None);
    let flat = TradingStopRequest {
        symbol: "ETHUSDT".into(),
        stop_loss: Some(dec("100")),
        ..Default::default()
    };
    assert!(matches!(
        h.rest.set_trading_stop(&creds, &flat).await,
        Err(BybitError::Rejected { code: 10001, .. })
    ));

    let rules = h.rest.linear_instrument_rules().await.unwrap();
    let symbols: Vec<&str> = rules.iter().map(|r| r.symbol.as_str()).collect();
    assert_eq!(symbols, vec!["AVAXUSDT", "BTCUSDT", "ETHUSDT"]);
    let avax = h.rest.instrument_rules(SYMBOL).await.unwrap().value.unwrap();
    assert_eq!(avax.qty_step, dec("0.1"));
    assert_eq!(avax.tick_size, dec("0.001"));
    assert_eq!(avax.min_order_qty, dec("0.1"));
    assert_eq!(avax.min_notional_value, dec("5"));
    assert_eq!(avax.max_leverage, dec("50"));
    assert!(avax.is_trading());
    assert!(h.rest.instrument_rules("NOPEUSDT").await.unwrap().value.is_none());
    let tickers = h.rest.tickers().await.unwrap().value;
    let avax = tickers.iter().find(|t| t.symbol == SYMBOL).unwrap();
    assert_eq!(avax.last_price, dec("26"));
    assert_eq!(avax.mark_price, Some(dec("26")));
}

#[tokio::test]
async fn stream_delivers_positions_wallet_and_exchange_created_orders() {
    let h = Harness::start().await;
    let creds = h.account("k-stream", "1000").await;
    let mut config = h.stream_config(creds.clone());
    config.topics = vec![
        PrivateTopic::Order,
        PrivateTopic::Execution,
        PrivateTopic::Position,
        PrivateTopic::Wallet,
    ];
    let (handle, mut events) = PrivateStream::spawn(config);
    next_matching(&mut events, |e| {
        matches!(e, StreamEvent::Connected { .. }).then_some(())
    })
    .await;

    let buy = CreateOrderRequest::market(SYMBOL, Side::Buy, dec("1"), id("s-open")).stop_loss(dec("24"));
    h.rest.create_order(&creds, &buy).await.unwrap();
    let position = next_matching(&mut events, |e| match e {
        StreamEvent::PositionUpdate(p) if p.size == dec("1") => Some(p),
        _ => None,
    })
    .await;
    assert_eq!(position.stop_loss, Some(dec("24")));
    assert_eq!(position.avg_price, Some(dec("25")));
    next_matching(&mut events, |e| match e {
        StreamEvent::WalletUpdate(w) => w.usdt(),
        _ => None,
    })
    .await;

    h.paper.exchange().set_price(SYMBOL, dec("25.5")).unwrap();
    let moved = next_matching(&mut events, |e| match e {
        StreamEvent::PositionUpdate(p) if p.mark_price == Some(dec("25.5")) => Some(p),
        _ => None,
    })
    .await;
    assert_eq!(moved.unrealised_pnl, Some(dec("0.5")));

    h.paper.exchange().set_price(SYMBOL, dec("23.9")).unwrap();
    // The paper exchange pushes a fill's execution before its order (Bybit does not say which
    // comes first; the default order is the one kept here).
    let fill = next_matching(&mut events, |e| match e {
        StreamEvent::Execution(x) if x.create_type == Some(CreateType::CreateByStopLoss) => Some(x),
        _ => None,
    })
    .await;
    assert_eq!(fill.closed_size, Some(dec("1")));
    assert_eq!(fill.exec_pnl, Some(dec("-1.1")));
    let stop = next_matching(&mut events, |e| match e {
        StreamEvent::OrderUpdate(o) if o.create_type == Some(CreateType::CreateByStopLoss) => Some(o),
        _ => None,
    })
    .await;
    assert_eq!(stop.order_link_id, "");
    assert_eq!(stop.order_status, OrderStatus::Filled);
    assert_eq!(stop.stop_order_type, "StopLoss");
    assert!(stop.closed_pnl.unwrap() < dec("-1.1"), "{stop:?}");
    assert!(CreateType::CreateByStopLoss.is_by_exchange());
    // What reconciliation reads after a gap: every fill since a time, the exchange's ones included.
    let since = h
        .rest
        .executions_since(&creds, None, stop.created_time.unwrap() - 60_000)
        .await
        .unwrap();
    assert_eq!(since.len(), 2);
    assert_eq!(since[0].create_type, Some(CreateType::CreateByStopLoss));
    assert_eq!(since[1].order_link_id, "s-open");
    handle.shutdown().await;
}
