//! What a trader buys: each signal becomes exactly one order per target account, sized right, or a
//! row that says why not.

use std::time::Duration;

use humbex_paper_exchange::Fault;
use rust_decimal::Decimal;
use serde_json::json;

use crate::harness::{Pipeline, wait_for};

/// The exchange holds the order (acknowledged, or already further along).
fn placed(status: &str) -> bool {
    matches!(status, "submitted" | "new" | "partially_filled" | "filled")
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[tokio::test]
async fn buy_sell_and_close_become_one_order_each() {
    let p = Pipeline::start(1).await;
    let (_, token, key) = p.trader("bsc@example.com", json!({}), "10000").await;

    let buy = p
        .signal(&token, json!({ "action": "buy", "quantity": "2", "id": "b1" }))
        .await;
    assert_eq!(p.settled(&buy).await, "done");
    let sell = p
        .signal(&token, json!({ "action": "sell", "quantity": "0.5", "id": "s1" }))
        .await;
    assert_eq!(p.settled(&sell).await, "done");
    let close = p.signal(&token, json!({ "action": "close", "id": "c1" })).await;
    assert_eq!(p.settled(&close).await, "done");

    let orders = p.exchange_orders(&key);
    assert_eq!(orders.len(), 3, "{orders:?}");
    assert_eq!(
        (orders[0].0.as_str(), orders[0].1, orders[0].2),
        ("Buy", d("2"), false)
    );
    assert_eq!(
        (orders[1].0.as_str(), orders[1].1, orders[1].2),
        ("Sell", d("0.5"), false)
    );
    // The close reads the position (long 1.5) and sends a reduce-only sell of all of it.
    assert_eq!(
        (orders[2].0.as_str(), orders[2].1, orders[2].2),
        ("Sell", d("1.5"), true)
    );
    // Each order is confirmed through the private WebSocket: filled, with its fill recorded once.
    for signal in [&buy, &sell, &close] {
        let id: uuid::Uuid = signal.parse().unwrap();
        let db = p.db().await;
        let filled = wait_for(Duration::from_secs(10), || async {
            let row = db
                .query_one(
                    "SELECT o.status, o.filled_qty = o.qty AS all_filled, o.avg_price IS NOT NULL AS priced, \
                            o.submitted_at IS NOT NULL AS submitted, o.filled_at IS NOT NULL AS filled, \
                            (SELECT count(*) FROM fills f WHERE f.order_id = o.id) AS fills \
                     FROM orders o WHERE o.signal_id = $1",
                    &[&id],
                )
                .await
                .unwrap();
            let status: String = row.get("status");
            (status == "filled").then(|| {
                (
                    row.get::<_, bool>("all_filled"),
                    row.get::<_, bool>("priced"),
                    row.get::<_, bool>("submitted"),
                    row.get::<_, bool>("filled"),
                    row.get::<_, i64>("fills"),
                )
            })
        })
        .await;
        assert_eq!(filled, Some((true, true, true, true, 1)), "signal {signal}");
    }
    // Flat now: another close is recorded as skipped, and nothing is sent.
    let flat = p.signal(&token, json!({ "action": "close", "id": "c2" })).await;
    assert_eq!(p.settled(&flat).await, "done");
    let rows = p.orders_of(&flat).await;
    assert_eq!(
        (rows[0].1.as_str(), rows[0].3.as_deref()),
        ("skipped", Some("no position"))
    );
    assert_eq!(p.exchange_orders(&key).len(), 3);
}

#[tokio::test]
async fn strategy_signal_fans_out_with_multipliers_and_caps() {
    let p = Pipeline::start(1).await;
    let strategy = p
        .admin(
            reqwest::Method::POST,
            "/admin/strategies",
            json!({ "name": "fan" }),
        )
        .await;
    let sid = strategy["id"].as_str().unwrap();
    let mut expected = Vec::new();
    for i in 0..50 {
        let (multiplier, cap, want) = match i % 3 {
            0 => ("1", None, "3"),
            1 => ("2.5", None, "7.5"),
            _ => ("4", Some("10"), "10"),
        };
        let mut sub = json!({ "strategy_id": sid, "size_multiplier": multiplier });
        if let Some(cap) = cap {
            sub["max_qty"] = json!(cap);
        }
        let (_, _, key) = p.trader(&format!("fan{i}@example.com"), sub, "100000").await;
        expected.push((key, d(want)));
    }
    let signal = p
        .signal(
            strategy["webhook_token"].as_str().unwrap(),
            json!({ "action": "buy", "quantity": "3" }),
        )
        .await;
    assert_eq!(p.settled(&signal).await, "done");
    for (key, want) in expected {
        let orders = p.exchange_orders(&key);
        assert_eq!(orders.len(), 1, "{key}: {orders:?}");
        assert_eq!(orders[0].1, want, "{key}");
    }
    assert_eq!(p.orders_of(&signal).await.len(), 50);
}

#[tokio::test]
async fn refusals_are_recorded_with_their_reason_and_nothing_is_sent() {
    let p = Pipeline::start(1).await;
    // Below the minimum after sizing: 0.1 × 0.5 = 0.05 < 0.1.
    let (_, small, small_key) = p
        .trader("small@example.com", json!({ "size_multiplier": "0.5" }), "10000")
        .await;
    let s = p
        .signal(&small, json!({ "action": "buy", "quantity": "0.1" }))
        .await;
    assert_eq!(p.settled(&s).await, "done");
    let rows = p.orders_of(&s).await;
    assert_eq!(rows[0].1, "skipped");
    assert!(
        rows[0].3.as_deref().unwrap().contains("below the minimum"),
        "{rows:?}"
    );
    assert!(p.exchange_orders(&small_key).is_empty());

    // Not enough margin: Bybit's refusal is kept with its code.
    let (_, poor, poor_key) = p.trader("poor@example.com", json!({}), "1").await;
    let s = p
        .signal(&poor, json!({ "action": "buy", "quantity": "100" }))
        .await;
    assert_eq!(p.settled(&s).await, "done");
    let db = p.db().await;
    let row = db
        .query_one(
            "SELECT status, error_code, error FROM orders WHERE signal_id = $1::text::uuid",
            &[&s],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "rejected");
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("110007"));
    assert!(p.exchange_orders(&poor_key).is_empty());

    // A revoked key: skipped, nothing sent.
    let (user, revoked, revoked_key) = p.trader("revoked@example.com", json!({}), "10000").await;
    let keys = p
        .admin(
            reqwest::Method::GET,
            &format!("/admin/users/{user}/api-keys"),
            json!(null),
        )
        .await;
    let key_id = keys[0]["id"].as_str().unwrap();
    p.admin(
        reqwest::Method::DELETE,
        &format!("/admin/api-keys/{key_id}"),
        json!(null),
    )
    .await;
    let s = p
        .signal(&revoked, json!({ "action": "buy", "quantity": "1" }))
        .await;
    assert_eq!(p.settled(&s).await, "done");
    let rows = p.orders_of(&s).await;
    assert_eq!(
        (rows[0].1.as_str(), rows[0].3.as_deref()),
        ("skipped", Some("the user has no usable API key"))
    );
    assert!(p.exchange_orders(&revoked_key).is_empty());

    // A subscription that expired between ingest and execution.
    let (user, late, late_key) = p.trader("late@example.com", json!({}), "10000").await;
    let db = p.db().await;
    // Stop executing for a moment by holding the signal's row lock is not needed: expire first,
    // then insert the signal as ingest would have stored it before the expiry.
    let s = p
        .signal(
            &late,
            json!({ "action": "buy", "quantity": "1", "id": "before-expiry" }),
        )
        .await;
    let _ = p.settled(&s).await;
    db.execute(
        "UPDATE subscriptions SET expires_at = now() - interval '1 second' WHERE user_id = $1::text::uuid",
        &[&user],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO signals (id, source, user_id, action, symbol, quantity, raw_body, idempotency_key) \
         VALUES ($1, 'signed', $2::text::uuid, 'buy', 'AVAXUSDT', 1, '{}', 'late-1')",
        &[&uuid::Uuid::now_v7(), &user],
    )
    .await
    .unwrap();
    let late_id: uuid::Uuid = db
        .query_one("SELECT id FROM signals WHERE idempotency_key = 'late-1'", &[])
        .await
        .unwrap()
        .get("id");
    assert_eq!(p.settled(&late_id.to_string()).await, "done");
    let rows = p.orders_of(&late_id.to_string()).await;
    assert_eq!(rows[0].1, "skipped");
    assert!(rows[0].3.as_deref().unwrap().contains("expired"), "{rows:?}");
    assert_eq!(
        p.exchange_orders(&late_key).len(),
        1,
        "only the order from before the expiry"
    );
}

#[tokio::test]
async fn a_lost_notify_is_found_by_the_sweep() {
    let p = Pipeline::start(1).await;
    let (user, _, key) = p.trader("sweep@example.com", json!({}), "10000").await;
    // Stored without NOTIFY, as if the notification was lost.
    p.db()
        .await
        .execute(
            "INSERT INTO signals (id, source, user_id, action, symbol, quantity, raw_body, idempotency_key) \
             VALUES ($1, 'signed', $2::text::uuid, 'buy', 'AVAXUSDT', 1, '{}', 'silent-1')",
            &[&uuid::Uuid::now_v7(), &user],
        )
        .await
        .unwrap();
    let placed = wait_for(Duration::from_secs(5), || async {
        (p.exchange_orders(&key).len() == 1).then_some(())
    })
    .await;
    assert!(
        placed.is_some(),
        "the sweep (every 0.5 s here) should have found the signal"
    );
}

#[tokio::test]
async fn exchange_faults_never_make_a_second_order() {
    let p = Pipeline::start(1).await;
    let (_, token, key) = p.trader("faults@example.com", json!({}), "100000").await;

    // A 500 after the order was really placed: the lookup by orderLinkId finds it.
    p.paper
        .exchange()
        .add_fault(Fault::OrderCreateHttpError {
            count: 1,
            status: 500,
            after_placing: true,
            api_key: Some(key.clone()),
        })
        .unwrap();
    let s = p
        .signal(&token, json!({ "action": "buy", "quantity": "1", "id": "f1" }))
        .await;
    assert_eq!(p.settled(&s).await, "done");
    assert_eq!(p.exchange_orders(&key).len(), 1);
    assert!(placed(&p.orders_of(&s).await[0].1));

    // A timeout after placing, then a burst of 10006: still exactly one order per signal.
    p.paper
        .exchange()
        .add_fault(Fault::OrderCreateTimeout {
            count: 1,
            hold_ms: 12_000,
            after_placing: true,
            api_key: Some(key.clone()),
        })
        .unwrap();
    let s = p
        .signal(&token, json!({ "action": "buy", "quantity": "1", "id": "f2" }))
        .await;
    assert_eq!(p.settled(&s).await, "done");
    assert_eq!(p.exchange_orders(&key).len(), 2);

    p.paper
        .exchange()
        .add_fault(Fault::RateLimitBurst {
            count: 3,
            api_key: Some(key.clone()),
        })
        .unwrap();
    let mut signals = Vec::new();
    for i in 0..5 {
        signals.push(
            p.signal(
                &token,
                json!({ "action": "buy", "quantity": "1", "id": format!("burst-{i}") }),
            )
            .await,
        );
    }
    for s in &signals {
        assert_eq!(p.settled(s).await, "done");
        assert!(placed(&p.orders_of(s).await[0].1));
    }
    let orders = p.exchange_orders(&key);
    assert_eq!(orders.len(), 7, "{orders:?}");
    let mut links: Vec<_> = orders.iter().map(|o| o.3.clone()).collect();
    links.sort();
    links.dedup();
    assert_eq!(links.len(), 7, "every order has its own orderLinkId");
}

#[tokio::test]
async fn two_executors_and_a_killed_one_never_duplicate() {
    let mut p = Pipeline::start(2).await;
    let (_, token, key) = p.trader("two@example.com", json!({}), "1000000").await;
    let mut signals = Vec::new();
    for i in 0..30 {
        signals.push(
            p.signal(
                &token,
                json!({ "action": "buy", "quantity": "1", "id": format!("two-{i}") }),
            )
            .await,
        );
        if i == 10 {
            // One executor dies mid-stream; a third starts. Leases (3 s here) hand its work over.
            p.kill_executor(0);
            p.start_executor();
        }
    }
    for s in &signals {
        assert_eq!(p.settled(s).await, "done");
    }
    // The account's owner may be the other executor than a signal's claimer: it places the order
    // moments after the claim wrote it (docs/deployment.md#several-executors).
    let placed = wait_for(Duration::from_secs(20), || async {
        let orders = p.exchange_orders(&key);
        (orders.len() >= 30).then_some(orders)
    })
    .await
    .expect("30 orders at the exchange");
    p.no_pending_orders().await;
    assert_eq!(placed.len(), 30, "exactly one order per signal");
    assert_eq!(p.exchange_orders(&key).len(), 30, "exactly one order per signal");
}

#[tokio::test]
async fn a_hedge_mode_account_is_refused_with_the_reason() {
    let p = Pipeline::start(1).await;
    let (_, token, key) = p
        .trader_in_mode(
            "hedge@example.com",
            json!({}),
            "10000",
            humbex_paper_exchange::PositionMode::Hedge,
        )
        .await;
    let s = p
        .signal(&token, json!({ "action": "buy", "quantity": "1" }))
        .await;
    assert_eq!(p.settled(&s).await, "done");
    let rows = p.orders_of(&s).await;
    assert_eq!(rows[0].1, "rejected", "{rows:?}");
    let reason = rows[0].3.as_deref().unwrap_or_default();
    assert!(
        reason.contains("position idx"),
        "the refusal should say why: {reason}"
    );
    assert!(p.exchange_orders(&key).is_empty());
}

#[tokio::test]
async fn a_fill_whose_push_was_lost_is_still_recorded() {
    let p = Pipeline::start(1).await;
    let (_, token, key) = p.trader("lostfill@example.com", json!({}), "10000").await;
    // The order push (Filled) arrives; the execution push never does.
    p.paper
        .exchange()
        .add_fault(Fault::WithholdPushes {
            topics: Some(vec!["execution".into(), "execution.fast".into()]),
            api_key: Some(key.clone()),
            count: None,
        })
        .unwrap();
    let s = p
        .signal(&token, json!({ "action": "buy", "quantity": "1", "id": "lf1" }))
        .await;
    assert_eq!(p.settled(&s).await, "done");
    let id: uuid::Uuid = s.parse().unwrap();
    let db = p.db().await;
    let recorded = wait_for(Duration::from_secs(15), || async {
        let row = db
            .query_one(
                "SELECT o.status, (SELECT count(*) FROM fills f WHERE f.order_id = o.id) FROM orders o WHERE o.signal_id = $1",
                &[&id],
            )
            .await
            .unwrap();
        (row.get::<_, String>(0) == "filled" && row.get::<_, i64>(1) == 1).then_some(())
    })
    .await;
    assert!(
        recorded.is_some(),
        "the order is filled but its fill was never fetched"
    );
}

/// docs/security.md#ciphertexts-bound-to-their-row: a ciphertext moved to another user's row does
/// not open there (the AAD binds it to its row and user), so the executor fails the order with the
/// reason and sends nothing, on either account. The key is not marked unusable: a ciphertext that
/// does not open says nothing against the key itself (docs/security.md#a-wrong-encryption-key).
#[tokio::test]
async fn swapped_key_ciphertexts_do_not_trade_and_leave_the_key_as_it_was() {
    // An executor opens the keys of the accounts it takes at its lease passes (to open their
    // streams) and would then hold the right credentials of a row in memory and trade on the right
    // account, which is not what this test is about. So its passes are made rare (a long lease),
    // and the keys are added once its start-up passes are done.
    let mut p = Pipeline::start(0).await;
    p.start_executor_with(|s| s.lease = Duration::from_secs(120));
    let started = wait_for(Duration::from_secs(20), || async {
        let db = p.db().await;
        let row = db
            .query_opt("SELECT 1 FROM executors WHERE heartbeat_at > started_at", &[])
            .await
            .unwrap();
        row.map(drop)
    })
    .await;
    assert!(
        started.is_some(),
        "the executor's second pass (after it joined) ran"
    );
    let (victim, victim_token, victim_key) = p.trader("victim@example.com", json!({}), "10000").await;
    let (thief, _, thief_key) = p.trader("thief@example.com", json!({}), "10000").await;
    let db = p.db().await;
    // The thief's row gets the victim's ciphertexts and the other way round, as an attacker with
    // write access to the table (but not the encryption key) could do.
    let swapped = db
        .execute(
            "UPDATE api_keys a SET api_key_enc = b.api_key_enc, api_secret_enc = b.api_secret_enc \
             FROM api_keys b \
             WHERE (a.user_id, b.user_id) IN (($1::text::uuid, $2::text::uuid), ($2::text::uuid, $1::text::uuid))",
            &[&victim, &thief],
        )
        .await
        .unwrap();
    assert_eq!(swapped, 2);

    let s = p
        .signal(
            &victim_token,
            json!({ "action": "buy", "quantity": "1", "id": "swap1" }),
        )
        .await;
    assert_eq!(p.settled(&s).await, "done");
    let rows = p.orders_of(&s).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1, "failed", "{rows:?}");
    assert!(
        rows[0]
            .3
            .as_deref()
            .unwrap_or_default()
            .contains("cannot be decrypted"),
        "{rows:?}"
    );
    let unusable: Option<chrono::DateTime<chrono::Utc>> = db
        .query_one(
            "SELECT unusable_at FROM api_keys WHERE user_id = $1::text::uuid",
            &[&victim],
        )
        .await
        .unwrap()
        .get("unusable_at");
    assert_eq!(unusable, None);
    assert!(p.exchange_orders(&victim_key).is_empty());
    assert!(p.exchange_orders(&thief_key).is_empty());
}

/// Issue 16, item 4: an executor given the wrong private key refuses to start, naming the
/// variable, and marks no key unusable; the right one then trades with the same key.
#[tokio::test]
async fn a_wrong_encryption_key_stops_the_executor_at_start_and_disables_no_key() {
    let mut p = Pipeline::start(0).await;
    let (user, token, key) = p.trader("wrong-key@example.com", json!({}), "10000").await;
    let (other_private, _) = humbex_shared::crypto::public_key::generate();
    let wrong = humbex_shared::api_key_vault::Opener::with_keys(
        Some(humbex_shared::crypto::public_key::PrivateKeys::from_hex_list(&other_private).unwrap()),
        None,
    );
    let run = p.executor(wrong, |_| {}).run_until(std::future::pending());
    let err = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the executor must stop at start-up, not run")
        .expect_err("a wrong key must stop the executor");
    let message = format!("{err:#}");
    assert!(message.starts_with("ENCRYPTION_PRIVATE_KEY:"), "{message}");
    assert!(message.contains("No API key was marked unusable"), "{message}");
    let db = p.db().await;
    let unusable: Option<chrono::DateTime<chrono::Utc>> = db
        .query_one(
            "SELECT unusable_at FROM api_keys WHERE user_id = $1::text::uuid",
            &[&user],
        )
        .await
        .unwrap()
        .get("unusable_at");
    assert_eq!(unusable, None);

    // The executor with the right key (ingest never had it) places the order.
    p.start_executor();
    let s = p
        .signal(
            &token,
            json!({ "action": "buy", "quantity": "1", "id": "right-key" }),
        )
        .await;
    assert_eq!(p.settled(&s).await, "done");
    // Settled means the exchange took the order; the fill arrives on the private stream after.
    let filled = wait_for(Duration::from_secs(10), || async {
        (p.orders_of(&s).await[0].1 == "filled").then_some(())
    })
    .await;
    assert!(filled.is_some(), "{:?}", p.orders_of(&s).await);
    assert_eq!(p.exchange_orders(&key).len(), 1);
}
