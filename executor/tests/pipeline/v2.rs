//! The trading language v2 from a webhook to the paper exchange: position sync (after a missed
//! alert, a reversal, the cap), sizing by each quantity type with a multiplier and a cap, the
//! minimum order value, limit entries, staleness, and v2 fields not carried out yet. The paper
//! exchange's own record (orders, positions) is the witness.

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::harness::Pipeline;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// The account's signed position on AVAXUSDT, as the paper exchange holds it.
fn position(p: &Pipeline, key: &str) -> Decimal {
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
async fn rows(
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
async fn send(p: &Pipeline, token: &str, body: Value) -> String {
    let id = p.signal(token, body).await;
    assert_eq!(p.settled(&id).await, "done", "signal {id}");
    id
}

/// The paper exchange's orders from the n-th on: (side, qty, reduce_only).
fn sent_since(p: &Pipeline, key: &str, n: usize) -> Vec<(String, Decimal, bool)> {
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
}

#[tokio::test]
async fn below_the_minimum_value_stale_and_unsupported_fields_send_nothing() {
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
    // A conditional entry (trigger_price) is not carried out by this executor yet: nothing is
    // sent rather than an order that fills now.
    let tp = send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "1", "trigger_price": "30", "id": "tp" }),
    )
    .await;
    for (signal, code) in [
        (&small, "below_min_notional"),
        (&tiny, "below_min_qty"),
        (&stale, "stale"),
        (&tp, "unsupported"),
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

/// The rows HUMBEX recorded for orders the exchange created on a user's accounts: (origin, side,
/// status, signal id, closed_pnl is set, fills).
async fn exchange_created(
    p: &Pipeline,
    user: &str,
) -> Vec<(String, String, String, Option<uuid::Uuid>, bool, i64)> {
    p.db()
        .await
        .query(
            "SELECT o.origin, o.side, o.status, o.signal_id, o.closed_pnl IS NOT NULL AS pnl, \
                    (SELECT count(*) FROM fills f WHERE f.order_id = o.id) AS fills \
             FROM orders o WHERE o.origin <> 'signal' AND o.user_id = $1 ORDER BY o.created_at",
            &[&user.parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get("origin"),
                r.get("side"),
                r.get("status"),
                r.get("signal_id"),
                r.get("pnl"),
                r.get("fills"),
            )
        })
        .collect()
}

#[tokio::test]
async fn take_profit_and_stop_loss_ride_on_the_entry_and_their_exits_are_recorded() {
    let p = Pipeline::start(1).await;
    let (user, token, key) = p
        .trader("tpsl@example.com", json!({ "size_multiplier": "2" }), "10000")
        .await;
    // Long 2 at 25 with TP 30 and SL 20, both on the order itself (one call).
    let entry = send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "1", "take_profit": "30", "stop_loss": "20", "id": "e1" }),
    )
    .await;
    let orders = p.paper.exchange().orders(&key).unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(
        (orders[0].take_profit, orders[0].stop_loss),
        (Some(d("30")), Some(d("20")))
    );
    // The position topic keeps HUMBEX's record of the position and its protection.
    let db = p.db().await;
    let user_id: uuid::Uuid = user.parse().unwrap();
    let held = crate::harness::wait_for(std::time::Duration::from_secs(10), || async {
        let row = db
            .query_opt(
                "SELECT side, size, take_profit, stop_loss, opened_by_signal_id FROM positions \
                 WHERE user_id = $1 AND symbol = 'AVAXUSDT' AND size > 0",
                &[&user_id],
            )
            .await
            .unwrap()?;
        Some((
            row.get::<_, String>("side"),
            row.get::<_, Decimal>("size"),
            row.get::<_, Option<Decimal>>("take_profit"),
            row.get::<_, Option<Decimal>>("stop_loss"),
            row.get::<_, Option<uuid::Uuid>>("opened_by_signal_id"),
        ))
    })
    .await;
    let entry_id: uuid::Uuid = entry.parse().unwrap();
    assert_eq!(
        held,
        Some(("buy".into(), d("2"), Some(d("30")), Some(d("20")), Some(entry_id)))
    );
    let listed = p
        .admin(
            reqwest::Method::GET,
            &format!("/admin/users/{user}/positions"),
            json!({}),
        )
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    let item = &listed["items"][0];
    assert_eq!(
        (
            &item["side"],
            &item["size"],
            &item["take_profit"],
            &item["stop_loss"]
        ),
        (&json!("buy"), &json!("2"), &json!("30"), &json!("20")),
        "{listed}"
    );

    // The price reaches the take profit: the exchange closes the position with an order of its
    // own, which HUMBEX records with origin take_profit, its fill and PnL, on the entry's signal.
    p.paper.exchange().set_price("AVAXUSDT", d("30.5")).unwrap();
    let recorded = crate::harness::wait_for(std::time::Duration::from_secs(10), || async {
        let rows = exchange_created(&p, &user).await;
        (rows.len() == 1 && rows[0].2 == "filled" && rows[0].5 == 1).then_some(rows)
    })
    .await;
    let recorded = match recorded {
        Some(rows) => rows,
        None => panic!(
            "the take-profit order is not recorded: {:?}; the exchange has {:?}",
            exchange_created(&p, &user).await,
            p.paper
                .exchange()
                .orders(&key)
                .unwrap()
                .iter()
                .map(|o| (o.create_type, o.status, o.order_link_id.clone()))
                .collect::<Vec<_>>()
        ),
    };
    assert_eq!(
        recorded[0],
        (
            "take_profit".into(),
            "sell".into(),
            "filled".into(),
            Some(entry_id),
            true,
            1
        )
    );
    assert_eq!(position(&p, &key), d("0"));

    // A short with a stop loss that is hit.
    p.paper.exchange().set_price("AVAXUSDT", d("25")).unwrap();
    let short = send(
        &p,
        &token,
        json!({ "action": "sell", "quantity": "1", "stop_loss": "27", "id": "e2" }),
    )
    .await;
    p.paper.exchange().set_price("AVAXUSDT", d("27.5")).unwrap();
    let short_id: uuid::Uuid = short.parse().unwrap();
    let recorded = crate::harness::wait_for(std::time::Duration::from_secs(10), || async {
        let rows = exchange_created(&p, &user).await;
        (rows.len() == 2 && rows[1].2 == "filled" && rows[1].5 == 1).then_some(rows)
    })
    .await
    .expect("the stop-loss order is recorded");
    assert_eq!(
        recorded[1],
        (
            "stop_loss".into(),
            "buy".into(),
            "filled".into(),
            Some(short_id),
            true,
            1
        )
    );
    assert_eq!(position(&p, &key), d("0"));

    // The admin API shows the exits on their signals, and the realised PnL of both trades: the
    // long won 2 × (30.5 − 25), the short lost 2 × (27.5 − 25); net of fees about 6.
    let detail = p
        .admin(
            reqwest::Method::GET,
            &format!("/admin/signals/{entry}"),
            json!({}),
        )
        .await;
    let origins: Vec<&str> = detail["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["origin"].as_str().unwrap())
        .collect();
    assert_eq!(origins, ["signal", "take_profit"], "{detail}");
    assert_eq!(detail["orders"][0]["take_profit"], "30");
    assert_eq!(detail["orders"][0]["stop_loss"], "20");
    let pnl = p
        .admin(
            reqwest::Method::GET,
            &format!("/admin/users/{user}/pnl"),
            json!({}),
        )
        .await;
    assert_eq!(pnl["total"]["closed_trades"], 2, "{pnl}");
    assert_eq!(pnl["symbols"][0]["symbol"], "AVAXUSDT", "{pnl}");
    let realised: Decimal = pnl["total"]["realised_pnl"].as_str().unwrap().parse().unwrap();
    assert!(realised > d("5") && realised < d("7"), "{pnl}");
    let positions = p
        .admin(
            reqwest::Method::GET,
            &format!("/admin/users/{user}/positions"),
            json!({}),
        )
        .await;
    assert_eq!(
        positions["items"].as_array().unwrap().len(),
        0,
        "flat: {positions}"
    );
}

#[tokio::test]
async fn percent_protection_and_a_trailing_stop_are_set_right_after_the_fill() {
    let p = Pipeline::start(1).await;
    let (user, token, key) = p.trader("trail@example.com", json!({}), "10000").await;
    // Long 1 at 25: TP +10% = 27.5, SL -5% = 23.75, set with trading-stop once the fill is seen.
    let entry = send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "1", "take_profit": { "percent": "10" },
                "stop_loss": { "percent": "5" }, "id": "pct" }),
    )
    .await;
    let entry_id: uuid::Uuid = entry.parse().unwrap();
    let db = p.db().await;
    let protected = crate::harness::wait_for(std::time::Duration::from_secs(10), || async {
        let row = db
            .query_one(
                "SELECT take_profit, stop_loss, unprotected_ms FROM orders WHERE signal_id = $1 AND origin = 'signal'",
                &[&entry_id],
            )
            .await
            .unwrap();
        let ms: Option<i64> = row.get("unprotected_ms");
        ms.map(|ms| (row.get::<_, Option<Decimal>>("take_profit"), row.get::<_, Option<Decimal>>("stop_loss"), ms))
    })
    .await
    .expect("protection recorded on the order");
    assert_eq!((protected.0, protected.1), (Some(d("27.5")), Some(d("23.75"))));
    assert!(protected.2 < 10_000, "unprotected for {} ms", protected.2);
    // The exchange's own record of the position carries them.
    let pos = p.paper.exchange().positions(&key).unwrap();
    let pos = pos
        .iter()
        .find(|x| x.symbol == "AVAXUSDT" && x.size > Decimal::ZERO)
        .unwrap();
    assert_eq!(
        (pos.take_profit, pos.stop_loss),
        (Some(d("27.5")), Some(d("23.75")))
    );
    // Flatten by hand (a target of 0), then a trailing stop: 1 below the best price since entry.
    send(
        &p,
        &token,
        json!({ "action": "sell", "target_position": "0", "id": "flat" }),
    )
    .await;
    let trail = send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "1", "trailing_stop": { "distance": "1" }, "id": "tr" }),
    )
    .await;
    let trail_id: uuid::Uuid = trail.parse().unwrap();
    crate::harness::wait_for(std::time::Duration::from_secs(10), || async {
        let row = db
            .query_one(
                "SELECT trailing_stop FROM orders WHERE signal_id = $1",
                &[&trail_id],
            )
            .await
            .unwrap();
        row.get::<_, Option<Decimal>>("trailing_stop")
    })
    .await
    .expect("trailing stop set");
    p.paper.exchange().set_price("AVAXUSDT", d("27")).unwrap();
    p.paper.exchange().set_price("AVAXUSDT", d("25.9")).unwrap();
    let recorded = crate::harness::wait_for(std::time::Duration::from_secs(10), || async {
        let rows = exchange_created(&p, &user).await;
        rows.iter()
            .find(|r| r.0 == "trailing_stop" && r.2 == "filled" && r.5 == 1)
            .cloned()
    })
    .await
    .expect("the trailing-stop order is recorded");
    assert_eq!(
        recorded,
        (
            "trailing_stop".into(),
            "sell".into(),
            "filled".into(),
            Some(trail_id),
            true,
            1
        )
    );
    assert_eq!(position(&p, &key), d("0"));
}

#[tokio::test]
async fn leverage_is_set_before_the_order_and_a_refusal_keeps_bybits_code() {
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
    // The signal's own leverage wins; one the exchange refuses leaves nothing sent, with the
    // exchange's code on the row.
    let refused = send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "1", "leverage": "200", "id": "l200" }),
    )
    .await;
    let r = rows(&p, &refused).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].4, "skipped");
    let code = r[0].5.clone().unwrap();
    assert!(
        code.chars().all(|c| c.is_ascii_digit()),
        "Bybit's numeric code, got {code}"
    );
    assert_eq!(p.exchange_orders(&key).len(), 1);
}

/// The paper exchange's status of an account's n-th order.
fn exchange_status(p: &Pipeline, key: &str, n: usize) -> String {
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
async fn break_even_moves_the_stop_once_across_a_restart() {
    let mut p = Pipeline::start(1).await;
    let (_, token, key) = p.trader("be@example.com", json!({}), "10000").await;
    // Long 1 at 25, stop 20; once the mark is 4% up (26), the stop goes to the entry.
    let entry = send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "1", "stop_loss": "20",
                "break_even": { "trigger_percent": "4", "offset_percent": "0" }, "id": "be" }),
    )
    .await;
    let entry: uuid::Uuid = entry.parse().unwrap();
    let db = p.db().await;
    let armed = crate::harness::wait_for(std::time::Duration::from_secs(10), || async {
        let row = db
            .query_opt(
                "SELECT trigger_price, stop_price, status FROM break_even WHERE signal_id = $1",
                &[&entry],
            )
            .await
            .unwrap()?;
        Some((
            row.get::<_, Decimal>("trigger_price"),
            row.get::<_, Decimal>("stop_price"),
            row.get::<_, String>("status"),
        ))
    })
    .await;
    assert_eq!(armed, Some((d("26"), d("25"), "armed".into())));

    // The executor restarts; the watch is in PostgreSQL, not in its memory.
    p.kill_executor(0);
    p.start_executor();
    // Let the new executor's stream for the account open before the price moves.
    crate::harness::wait_for(std::time::Duration::from_secs(10), || async {
        (p.paper.exchange().listening_accounts() > 0).then_some(())
    })
    .await
    .expect("the account's stream reopens");
    p.paper.exchange().set_price("AVAXUSDT", d("26.5")).unwrap();
    let moved = crate::harness::wait_for(std::time::Duration::from_secs(10), || async {
        let row = db
            .query_one(
                "SELECT status, fired_at FROM break_even WHERE signal_id = $1",
                &[&entry],
            )
            .await
            .unwrap();
        let status: String = row.get("status");
        (status == "moved").then(|| row.get::<_, chrono::DateTime<chrono::Utc>>("fired_at"))
    })
    .await
    .expect("the stop moved");
    let stop = |p: &Pipeline| {
        p.paper
            .exchange()
            .positions(&key)
            .unwrap()
            .iter()
            .find(|x| x.symbol == "AVAXUSDT" && x.size > Decimal::ZERO)
            .and_then(|x| x.stop_loss)
    };
    assert_eq!(stop(&p), Some(d("25")));
    // More pushes past the trigger do not move it again.
    p.paper.exchange().set_price("AVAXUSDT", d("27")).unwrap();
    p.paper.exchange().set_price("AVAXUSDT", d("26.2")).unwrap();
    // Wait until HUMBEX has seen the last push (its mark price is in `positions`).
    crate::harness::wait_for(std::time::Duration::from_secs(10), || async {
        let row = db
            .query_opt(
                "SELECT 1 FROM positions p JOIN break_even b ON b.api_key_id = p.api_key_id \
                 WHERE b.signal_id = $1 AND p.mark_price = 26.2",
                &[&entry],
            )
            .await
            .unwrap();
        row.map(|_| ())
    })
    .await
    .expect("the last push is seen");
    let again: chrono::DateTime<chrono::Utc> = db
        .query_one("SELECT fired_at FROM break_even WHERE signal_id = $1", &[&entry])
        .await
        .unwrap()
        .get("fired_at");
    assert_eq!(again, moved);
    assert_eq!(stop(&p), Some(d("25")));
}

#[tokio::test]
async fn a_liquidation_is_recorded_on_the_account_and_the_signal_that_opened_the_position() {
    let p = Pipeline::start(1).await;
    // The subscription trades isolated margin (set on the account before the first order).
    let (user, token, key) = p
        .trader("liq@example.com", json!({ "margin_mode": "isolated" }), "1000")
        .await;
    let entry = send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "1", "id": "liq" }),
    )
    .await;
    let entry: uuid::Uuid = entry.parse().unwrap();
    assert_eq!(position(&p, &key), d("1"));
    // Isolated at 10x from 25: liquidated at 22.625.
    p.paper.exchange().set_price("AVAXUSDT", d("22.6")).unwrap();
    let recorded = crate::harness::wait_for(std::time::Duration::from_secs(10), || async {
        let rows = exchange_created(&p, &user).await;
        rows.into_iter()
            .find(|r| r.0 == "liquidation" && r.2 == "filled" && r.5 == 1)
    })
    .await;
    let Some(recorded) = recorded else {
        panic!(
            "no liquidation recorded: {:?}; exchange: {:?}; position {}",
            exchange_created(&p, &user).await,
            p.paper
                .exchange()
                .orders(&key)
                .unwrap()
                .iter()
                .map(|o| (o.create_type, o.status, o.qty))
                .collect::<Vec<_>>(),
            position(&p, &key)
        );
    };
    assert_eq!(
        recorded,
        (
            "liquidation".into(),
            "sell".into(),
            "filled".into(),
            Some(entry),
            true,
            1
        )
    );
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
    // Each round: buy 2, buy 3, sell 5 reduce-only; never an order from a stale position.
    let sent = sent_since(&p, &key, 0);
    for round in sent.chunks(3) {
        assert_eq!(
            round,
            [
                ("Buy".into(), d("2"), false),
                ("Buy".into(), d("3"), false),
                ("Sell".into(), d("5"), true)
            ],
            "{sent:?}"
        );
    }
}
