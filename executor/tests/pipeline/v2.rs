//! The trading language v2 from a webhook to the paper exchange: position sync (after a missed
//! alert, a reversal, the cap), sizing by each quantity type with a multiplier and a cap, the
//! minimum order value, limit and conditional entries, leverage, cancel and its timer, staleness
//! and racing alerts. The paper exchange's own record is the witness.

use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::harness::{Pipeline, wait_for};

pub(crate) fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// The account's signed position on AVAXUSDT, as the paper exchange holds it.
pub(crate) fn position(p: &Pipeline, key: &str) -> Decimal {
    p.paper
        .exchange()
        .positions(key)
        .expect("account")
        .iter()
        .filter(|pos| pos.symbol == "AVAXUSDT")
        .map(|pos| match pos.side {
            Some(humbex_paper_exchange::engine::Side::Buy) => pos.size,
            Some(humbex_paper_exchange::engine::Side::Sell) => -pos.size,
            None => Decimal::ZERO,
        })
        .sum()
}

/// The order rows HUMBEX wrote for a signal: (leg, side, qty, reduce_only, status, error_code).
pub(crate) async fn rows(
    p: &Pipeline,
    signal: &str,
) -> Vec<(String, String, Option<Decimal>, bool, String, Option<String>)> {
    let id: uuid::Uuid = signal.parse().unwrap();
    p.db()
        .await
        .query(
            "SELECT leg, side, qty, reduce_only, status, error_code FROM orders WHERE signal_id = $1 \
             ORDER BY id",
            &[&id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get("leg"),
                r.get("side"),
                r.get("qty"),
                r.get("reduce_only"),
                r.get("status"),
                r.get("error_code"),
            )
        })
        .collect()
}

/// Send and wait until the signal is settled.
pub(crate) async fn send(p: &Pipeline, token: &str, body: Value) -> String {
    let id = p.signal(token, body).await;
    assert_eq!(p.settled(&id).await, "done", "signal {id}");
    id
}

/// The paper exchange's orders from the n-th on: (side, qty, reduce_only).
pub(crate) fn sent_since(p: &Pipeline, key: &str, n: usize) -> Vec<(String, Decimal, bool)> {
    p.exchange_orders(key)
        .into_iter()
        .skip(n)
        .map(|(side, qty, reduce_only, _)| (side, qty, reduce_only))
        .collect()
}

#[tokio::test]
async fn target_sync_heals_a_missed_alert_reverses_and_respects_the_cap() {
    let p = Pipeline::start(1).await;
    // Every target is doubled and capped at 10 coins in absolute size.
    let (_, token, key) = p
        .trader(
            "sync@example.com",
            json!({ "size_multiplier": "2", "max_qty": "10" }),
            "100000",
        )
        .await;

    send(
        &p,
        &token,
        json!({ "action": "buy", "target_position": "1", "id": "t1" }),
    )
    .await;
    assert_eq!(position(&p, &key), d("2"));
    // The strategy went to 2 and then 3; the alert for 2 never arrived. The next one heals it.
    send(
        &p,
        &token,
        json!({ "action": "buy", "target_position": "3", "id": "t3" }),
    )
    .await;
    assert_eq!(position(&p, &key), d("6"));
    assert_eq!(
        sent_since(&p, &key, 0),
        [("Buy".into(), d("2"), false), ("Buy".into(), d("4"), false)]
    );

    // A reversal: close the long with a reduce-only leg, then open the short.
    let reversal = send(
        &p,
        &token,
        json!({ "action": "sell", "target_position": "-2", "id": "r1" }),
    )
    .await;
    assert_eq!(position(&p, &key), d("-4"));
    assert_eq!(
        sent_since(&p, &key, 2),
        [("Sell".into(), d("6"), true), ("Sell".into(), d("4"), false)]
    );
    let legs = rows(&p, &reversal).await;
    assert_eq!(
        legs.iter().map(|r| (r.0.as_str(), r.3)).collect::<Vec<_>>(),
        [("reduce", true), ("open", false)]
    );

    // The cap bounds the target: 20 × 2 = 40, held at -10.
    send(
        &p,
        &token,
        json!({ "action": "sell", "target_position": "-20", "id": "c1" }),
    )
    .await;
    assert_eq!(position(&p, &key), d("-10"));

    // The same target again is nothing to do: a skipped row says so, nothing is sent.
    let again = send(
        &p,
        &token,
        json!({ "action": "sell", "target_position": "-20", "id": "c2" }),
    )
    .await;
    let again = rows(&p, &again).await;
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].4.as_str(), again[0].5.as_deref()),
        ("skipped", Some("at_target"))
    );
    assert_eq!(p.exchange_orders(&key).len(), 5);

    // Flat: the whole short closes, reduce-only.
    send(
        &p,
        &token,
        json!({ "action": "buy", "target_position": "0", "id": "flat" }),
    )
    .await;
    assert_eq!(position(&p, &key), d("0"));
    assert_eq!(sent_since(&p, &key, 5), [("Buy".into(), d("10"), true)]);
}

#[tokio::test]
async fn each_quantity_type_is_scaled_by_the_multiplier_and_capped() {
    let p = Pipeline::start(1).await;
    let (_, token, key) = p
        .trader(
            "sizes@example.com",
            json!({ "size_multiplier": "1.5", "max_qty": "50" }),
            "10000",
        )
        .await;
    // usdt: 100 USDT at the last price 25 = 4 coins, × 1.5 = 6.
    send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "100", "quantity_type": "usdt", "id": "u" }),
    )
    .await;
    // base: 2 × 1.5 = 3.
    send(&p, &token, json!({ "action": "buy", "quantity": "2", "id": "b" })).await;
    // equity_percent: 1% of 10000 USDT equity = 100 USDT, × leverage 10 = 1000 USDT at 25 = 40,
    // × 1.5 = 60, capped at 50.
    send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "1", "quantity_type": "equity_percent", "id": "e" }),
    )
    .await;
    assert_eq!(position(&p, &key), d("59"));
    // position_percent: 10% of 59 = 5.9, × 1.5 = 8.85 → 8.8, reduce-only.
    send(
        &p,
        &token,
        json!({ "action": "sell", "quantity": "10", "quantity_type": "position_percent", "id": "pp" }),
    )
    .await;
    assert_eq!(
        sent_since(&p, &key, 0),
        [
            ("Buy".into(), d("6"), false),
            ("Buy".into(), d("3"), false),
            ("Buy".into(), d("50"), false),
            ("Sell".into(), d("8.8"), true),
        ]
    );
    assert_eq!(position(&p, &key), d("50.2"));

    // risk_percent, on a fresh account: lose 0.1% of 10000 USDT = 10 USDT if the stop at 24 is hit,
    // 1 USDT per coin from 25 → 10 coins, × 1.5 = 15; the stop rides on the order.
    let (_, token, key) = p
        .trader(
            "risk@example.com",
            json!({ "size_multiplier": "1.5", "max_qty": "50" }),
            "10000",
        )
        .await;
    send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "0.1", "quantity_type": "risk_percent",
                "stop_loss": "24", "id": "r" }),
    )
    .await;
    assert_eq!(sent_since(&p, &key, 0), [("Buy".into(), d("15"), false)]);
    let positions = p.paper.exchange().positions(&key).unwrap();
    let held = positions.iter().find(|x| x.symbol == "AVAXUSDT").unwrap();
    assert_eq!(held.stop_loss, Some(d("24")));
}

#[tokio::test]
async fn below_the_minimum_value_and_stale_send_nothing() {
    let p = Pipeline::start(1).await;
    let (_, token, key) = p.trader("skips@example.com", json!({}), "10000").await;
    // 3 USDT at 25 = 0.12 → 0.1 coins = 2.5 USDT, below the instrument's 5 USDT minimum value:
    // skipped before sending (Bybit would refuse it with 110094).
    let small = send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "3", "quantity_type": "usdt", "id": "s" }),
    )
    .await;
    // 0.04 coins rounds down to 0, below the minimum quantity.
    let tiny = send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "0.04", "id": "t" }),
    )
    .await;
    // An alert whose own timestamp is older than max_lag_secs.
    let old = (chrono::Utc::now() - chrono::Duration::seconds(120)).to_rfc3339();
    let stale = send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "1", "max_lag_secs": 60, "timestamp": old, "id": "old" }),
    )
    .await;
    for (signal, code) in [
        (&small, "below_min_notional"),
        (&tiny, "below_min_qty"),
        (&stale, "stale"),
    ] {
        let r = rows(&p, signal).await;
        assert_eq!(r.len(), 1, "{signal}");
        assert_eq!(
            (r[0].4.as_str(), r[0].5.as_deref()),
            ("skipped", Some(code)),
            "{signal}"
        );
    }
    assert!(p.exchange_orders(&key).is_empty());
    // The reason on the row is a sentence naming what to change.
    let id: uuid::Uuid = stale.parse().unwrap();
    let error: String = p
        .db()
        .await
        .query_one("SELECT error FROM orders WHERE signal_id = $1", &[&id])
        .await
        .unwrap()
        .get("error");
    assert!(error.contains("max_lag_secs 60"), "{error}");
}

#[tokio::test]
async fn a_limit_entry_rests_on_the_exchange_with_its_price_and_time_in_force() {
    let p = Pipeline::start(1).await;
    let (_, token, key) = p
        .trader("limit@example.com", json!({ "size_multiplier": "2" }), "10000")
        .await;
    let signal = send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "1", "order_type": "limit", "limit_price": "20",
                "time_in_force": "post_only", "id": "l1" }),
    )
    .await;
    let orders = p.paper.exchange().orders(&key).unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(format!("{:?}", orders[0].order_type), "Limit");
    assert_eq!(format!("{:?}", orders[0].time_in_force), "PostOnly");
    assert_eq!((orders[0].price, orders[0].qty), (d("20"), d("2")));
    assert_eq!(position(&p, &key), d("0"));
    let id: uuid::Uuid = signal.parse().unwrap();
    let row = p
        .db()
        .await
        .query_one(
            "SELECT order_type, limit_price, time_in_force FROM orders WHERE signal_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>("order_type"), "limit");
    assert_eq!(row.get::<_, Option<Decimal>>("limit_price"), Some(d("20")));
    assert_eq!(
        row.get::<_, Option<String>>("time_in_force").as_deref(),
        Some("post_only")
    );
}

#[tokio::test]
async fn leverage_is_set_before_the_order_and_above_the_maximum_is_refused() {
    let p = Pipeline::start(1).await;
    // The subscription's default leverage 5 applies to signals that name none.
    let (_, token, key) = p
        .trader("lev@example.com", json!({ "leverage": "5" }), "10000")
        .await;
    // 1% of 10000 equity × 5 = 500 USDT at 25 = 20 coins.
    send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "1", "quantity_type": "equity_percent", "id": "l5" }),
    )
    .await;
    let pos = p.paper.exchange().positions(&key).unwrap();
    let pos = pos.iter().find(|x| x.symbol == "AVAXUSDT").unwrap();
    assert_eq!((pos.size, pos.leverage), (d("20"), d("5")));
    // The signal's own leverage wins; one above the instrument's maximum (leverageFilter from
    // instruments-info) is refused before anything is sent, with the maximum named.
    let refused = send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "1", "leverage": "200", "id": "l200" }),
    )
    .await;
    let r = rows(&p, &refused).await;
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].4.as_str(), r[0].5.as_deref()),
        ("skipped", Some("leverage_above_max"))
    );
    let id: uuid::Uuid = refused.parse().unwrap();
    let error: String = p
        .db()
        .await
        .query_one("SELECT error FROM orders WHERE signal_id = $1", &[&id])
        .await
        .unwrap()
        .get("error");
    assert!(error.contains("maximum"), "{error}");
    assert_eq!(p.exchange_orders(&key).len(), 1);
}

/// The paper exchange's status of an account's n-th order.
pub(crate) fn exchange_status(p: &Pipeline, key: &str, n: usize) -> String {
    format!("{:?}", p.paper.exchange().orders(key).unwrap()[n].status)
}

#[tokio::test]
async fn a_limit_is_cancelled_after_its_time_and_by_a_cancel_signal() {
    let p = Pipeline::start(1).await;
    let (_, token, key) = p.trader("cancel@example.com", json!({}), "10000").await;
    // Rests at 20 (the price is 25) and is cancelled after 1 s by the durable timer.
    let timed = send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "1", "order_type": "limit", "limit_price": "20",
                "cancel_after_secs": 1, "id": "timed" }),
    )
    .await;
    let status = crate::harness::wait_for(std::time::Duration::from_secs(10), || async {
        let s = exchange_status(&p, &key, 0);
        (s == "Cancelled").then_some(s)
    })
    .await;
    assert_eq!(status.as_deref(), Some("Cancelled"));
    let timed: uuid::Uuid = timed.parse().unwrap();
    let db = p.db().await;
    let row_status = crate::harness::wait_for(std::time::Duration::from_secs(10), || async {
        let row = db
            .query_one("SELECT status FROM orders WHERE signal_id = $1", &[&timed])
            .await
            .unwrap();
        let s: String = row.get("status");
        (s == "cancelled").then_some(s)
    })
    .await;
    assert_eq!(row_status.as_deref(), Some("cancelled"));

    // A resting limit without a timer, then `action=cancel` on the symbol.
    send(
        &p,
        &token,
        json!({ "action": "sell", "quantity": "1", "order_type": "limit", "limit_price": "30", "id": "rest" }),
    )
    .await;
    assert_eq!(exchange_status(&p, &key, 1), "New");
    send(&p, &token, json!({ "action": "cancel", "id": "cx" })).await;
    assert_eq!(exchange_status(&p, &key, 1), "Cancelled");
    assert_eq!(position(&p, &key), d("0"));
}

#[tokio::test]
async fn two_racing_alerts_for_one_account_apply_in_order_of_arrival() {
    let p = Pipeline::start(1).await;
    let (_, token, key) = p.trader("race@example.com", json!({}), "100000").await;
    for round in 0..3 {
        // Two target alerts arrive back to back, before the first is carried out: each reads
        // the position the one before it left, so the account ends exactly at the last target.
        let first = p
            .signal(
                &token,
                json!({ "action": "buy", "target_position": "2", "id": format!("a{round}") }),
            )
            .await;
        let second = p
            .signal(
                &token,
                json!({ "action": "buy", "target_position": "5", "id": format!("b{round}") }),
            )
            .await;
        assert_eq!(p.settled(&first).await, "done");
        assert_eq!(p.settled(&second).await, "done");
        assert_eq!(position(&p, &key), d("5"), "round {round}");
        send(
            &p,
            &token,
            json!({ "action": "sell", "target_position": "0", "id": format!("z{round}") }),
        )
        .await;
        assert_eq!(position(&p, &key), d("0"));
    }
    rounds_of_two_then_five_then_flat(&p, &key);
}

/// Each round of targets 2, 5, 0 was sent as buy 2, buy 3, sell 5 reduce-only: never an order
/// from a stale position.
pub(crate) fn rounds_of_two_then_five_then_flat(p: &Pipeline, key: &str) {
    let sent = sent_since(p, key, 0);
    for round in sent.chunks(3) {
        assert_eq!(
            round,
            [
                ("Buy".into(), d("2"), false),
                ("Buy".into(), d("3"), false),
                ("Sell".into(), d("5"), true)
            ],
            "{key}: {sent:?}"
        );
    }
}

#[tokio::test]
async fn a_conditional_entry_waits_for_its_trigger_and_then_fills() {
    let p = Pipeline::start(1).await;
    let (_, token, key) = p.trader("trigger@example.com", json!({}), "10000").await;
    let price = p.paper.exchange().price("AVAXUSDT").unwrap();
    // One above the price (a breakout buy) and one below it (a dip sell): each needs its own
    // direction, or the exchange refuses it (110092/110093) or fills it at once.
    let above = price + d("5");
    let below = price - d("5");
    let rise = send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "1", "trigger_price": above.to_string(), "id": "rise" }),
    )
    .await;
    let fall = send(
        &p,
        &token,
        json!({ "action": "sell", "quantity": "2", "trigger_price": below.to_string(), "id": "fall" }),
    )
    .await;
    for signal in [&rise, &fall] {
        let r = rows(&p, signal).await;
        assert_eq!(r.len(), 1, "{signal}");
        assert_ne!(r[0].4.as_str(), "skipped", "{signal}: {:?}", r[0].5);
    }
    let orders = p.paper.exchange().orders(&key).unwrap();
    assert_eq!(orders.len(), 2, "both wait on the exchange");
    assert_eq!(position(&p, &key), d("0"), "nothing filled before a trigger");
    let id: uuid::Uuid = rise.parse().unwrap();
    let stored: Option<Decimal> = p
        .db()
        .await
        .query_one("SELECT trigger_price FROM orders WHERE signal_id = $1", &[&id])
        .await
        .unwrap()
        .get("trigger_price");
    assert_eq!(stored, Some(above));

    // The price reaches the buy's trigger: it fills, the sell still waits.
    p.paper
        .exchange()
        .set_price("AVAXUSDT", above + d("0.1"))
        .unwrap();
    wait_for(Duration::from_secs(10), || async {
        (position(&p, &key) == d("1")).then_some(())
    })
    .await
    .expect("the buy filled once its trigger was reached");
    // Then it falls through the sell's trigger: 1 - 2 = -1.
    p.paper
        .exchange()
        .set_price("AVAXUSDT", below - d("0.1"))
        .unwrap();
    wait_for(Duration::from_secs(10), || async {
        (position(&p, &key) == d("-1")).then_some(())
    })
    .await
    .expect("the sell filled once its trigger was reached");
}

#[tokio::test]
async fn a_symbol_the_exchange_does_not_list_is_skipped_with_a_reason() {
    let p = Pipeline::start(1).await;
    let (_, token, key) = p.trader("unlisted@example.com", json!({}), "10000").await;
    // SYMBOLS=* lets ingest accept any USDT name; the exchange lists no FOOUSDT.
    for body in [
        json!({ "action": "buy", "symbol": "FOOUSDT", "quantity": "1", "id": "v1" }),
        json!({ "action": "buy", "symbol": "FOOUSDT", "quantity": "10", "quantity_type": "usdt", "id": "v2" }),
    ] {
        let signal = send(&p, &token, body).await;
        let r = rows(&p, &signal).await;
        assert_eq!(r.len(), 1, "{signal}");
        assert_eq!(
            (r[0].4.as_str(), r[0].5.as_deref()),
            ("skipped", Some("unknown_symbol"))
        );
    }
    assert!(p.exchange_orders(&key).is_empty());
}
