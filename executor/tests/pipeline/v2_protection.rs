//! The trading language v2's protection from a webhook to the paper exchange: TP/SL on the entry
//! order, percent TP/SL and trailing stops set after the fill, break-even across a restart, and
//! the orders the exchange creates (TP, SL, trailing, liquidation) recorded with their fills and
//! PnL. The paper exchange's own record (orders, positions) is the witness.

use rust_decimal::Decimal;
use serde_json::json;

use crate::console_view::{between, console_page};
use crate::harness::Pipeline;
use crate::v2::{d, position, send};

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
    // The console's user page shows the same position, through the same admin function.
    let page = console_page(&p, &format!("/console/users/{user}")).await;
    let shown = between(&page, "positions", Some("recent"));
    assert!(shown.contains("data-position=\"AVAXUSDT\""), "{shown}");
    assert!(shown.contains("<td>buy</td><td>2</td>"), "{shown}");

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
    // The outbox (sql/V7) has the entry's fill and the take profit, each once: the exit is a
    // take_profit_hit on the entry's signal with its PnL, not also an order_filled.
    let events: Vec<(String, String, Option<String>, bool)> = p
        .db()
        .await
        .query(
            "SELECT event, data ->> 'origin' AS origin, data ->> 'signal_id' AS signal_id, \
                    data ? 'closed_pnl' AND data ->> 'closed_pnl' IS NOT NULL AS pnl \
             FROM notifications WHERE user_id = $1 ORDER BY event",
            &[&user.parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("event"), r.get("origin"), r.get("signal_id"), r.get("pnl")))
        .collect();
    let entry_signal = Some(entry_id.to_string());
    assert_eq!(
        events,
        [
            (
                "order_filled".into(),
                "signal".into(),
                entry_signal.clone(),
                false
            ),
            ("take_profit_hit".into(), "take_profit".into(), entry_signal, true),
        ]
    );

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

    // The console shows the exit under the entry's signal, apart from HUMBEX's own order, with
    // its closed PnL; and the user's PnL as the API reports it.
    let page = console_page(&p, &format!("/console/signals/{entry}")).await;
    let placed = between(&page, "orders-placed", Some("orders-followed"));
    let followed = between(&page, "orders-followed", None);
    assert!(placed.contains("data-origin=\"signal\""), "{placed}");
    assert!(!placed.contains("data-origin=\"take_profit\""), "{placed}");
    assert!(followed.contains("data-origin=\"take_profit\""), "{followed}");
    let closed = detail["orders"][1]["closed_pnl"].as_str().unwrap();
    assert!(
        followed.contains(&format!("<dd>{closed}</dd>")),
        "{closed}: {followed}"
    );
    let page = console_page(&p, &format!("/console/users/{user}")).await;
    let shown = between(&page, "positions", Some("recent"));
    assert!(shown.contains("No open positions."), "{shown}");
    let total = pnl["total"]["realised_pnl"].as_str().unwrap();
    assert!(
        shown.contains(&format!("data-pnl-total=\"{total}\"")),
        "{total}: {shown}"
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
    let killed_at: chrono::DateTime<chrono::Utc> =
        db.query_one("SELECT now() AS t", &[]).await.unwrap().get("t");
    p.kill_executor(0);
    p.start_executor();
    // Let the new executor take the account (once the killed one's lease ran out:
    // docs/deployment.md#several-executors) and open its stream before the price moves.
    crate::harness::wait_for(std::time::Duration::from_secs(20), || async {
        let taken = db
            .query_opt(
                "SELECT 1 FROM account_leases WHERE acquired_at > $1",
                &[&killed_at],
            )
            .await
            .unwrap()
            .is_some();
        (taken && p.paper.exchange().private_connections(&key) == 1).then_some(())
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
