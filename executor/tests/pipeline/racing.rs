//! Racing alerts for one account across the fleet (docs/trading-v2-executor.md#racing-alerts-for-one-account):
//! a signal whose plan reads the position is claimed only after every earlier signal on its
//! accounts is finished and placed, whichever executor claimed or owns what; plain signals are
//! never held back. The paper exchange's positions and orders are the witness.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::fleet::{holders, start, strategy_with_subscribers, wait_spread};
use crate::harness::{Pipeline, wait_for};
use crate::v2::{d, position, sent_since};

#[tokio::test]
async fn racing_target_alerts_across_two_executors_end_at_the_last_target() {
    let mut p = Pipeline::start(0).await;
    // Four accounts, two owned by each executor: whichever claims a signal, two of its accounts'
    // orders are placed by the other one.
    let (token, keys) = strategy_with_subscribers(&p, 4).await;
    start(&mut p, "race-a", Duration::from_secs(3));
    start(&mut p, "race-b", Duration::from_secs(3));
    let even = BTreeMap::from([("race-a".to_owned(), 2), ("race-b".to_owned(), 2)]);
    wait_spread(&p, &keys, &even, Duration::from_secs(20)).await;

    for round in 0..3 {
        // Back to back, from flat: 2 then 5 must end at 5 (buy 2, buy 3), never 7 (both read 0).
        let first = p
            .signal(
                &token,
                json!({ "action": "buy", "target_position": "2", "id": format!("two-{round}") }),
            )
            .await;
        let second = p
            .signal(
                &token,
                json!({ "action": "buy", "target_position": "5", "id": format!("five-{round}") }),
            )
            .await;
        assert_eq!(p.settled(&first).await, "done");
        assert_eq!(p.settled(&second).await, "done");
        p.no_pending_orders().await;
        for key in &keys {
            assert_eq!(
                position(&p, key),
                d("5"),
                "round {round}, {key}: {:?}",
                sent_since(&p, key, 0)
            );
        }
        let flat = p
            .signal(
                &token,
                json!({ "action": "sell", "target_position": "0", "id": format!("flat-{round}") }),
            )
            .await;
        assert_eq!(p.settled(&flat).await, "done");
        p.no_pending_orders().await;
        for key in &keys {
            assert_eq!(position(&p, key), d("0"), "round {round}, {key}");
        }
    }
    for key in &keys {
        let sent = sent_since(&p, key, 0);
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
}

#[tokio::test]
async fn a_users_own_alert_and_its_strategys_alert_race_in_order_of_arrival() {
    let mut p = Pipeline::start(0).await;
    let strategy = p
        .admin(
            reqwest::Method::POST,
            "/admin/strategies",
            json!({ "name": "shared" }),
        )
        .await;
    let strategy_token = strategy["webhook_token"].as_str().unwrap().to_owned();
    let follows = json!({ "strategy_id": strategy["id"] });
    // Two followers, so the executors own one account each; the first also trades on its own.
    let (_, own_token, own_key) = p.trader("own@example.com", follows.clone(), "100000").await;
    let (_, _, other_key) = p.trader("other@example.com", follows, "100000").await;
    let keys = [own_key.clone(), other_key.clone()];
    start(&mut p, "mixed-a", Duration::from_secs(3));
    start(&mut p, "mixed-b", Duration::from_secs(3));
    let even = BTreeMap::from([("mixed-a".to_owned(), 1), ("mixed-b".to_owned(), 1)]);
    wait_spread(&p, &keys, &even, Duration::from_secs(20)).await;

    for round in 0..2 {
        // The strategy's target, then the user's own: the user's account ends at its own target.
        let first = p
            .signal(
                &strategy_token,
                json!({ "action": "buy", "target_position": "2", "id": format!("s2-{round}") }),
            )
            .await;
        let second = p
            .signal(
                &own_token,
                json!({ "action": "buy", "target_position": "5", "id": format!("u5-{round}") }),
            )
            .await;
        assert_eq!(p.settled(&first).await, "done");
        assert_eq!(p.settled(&second).await, "done");
        p.no_pending_orders().await;
        assert_eq!(
            position(&p, &own_key),
            d("5"),
            "round {round}: {:?}",
            sent_since(&p, &own_key, 0)
        );
        assert_eq!(position(&p, &other_key), d("2"));
        // The other way round: the user's own, then the strategy's, which both accounts end at.
        let first = p
            .signal(
                &own_token,
                json!({ "action": "sell", "target_position": "1", "id": format!("u1-{round}") }),
            )
            .await;
        let second = p
            .signal(
                &strategy_token,
                json!({ "action": "sell", "target_position": "0", "id": format!("s0-{round}") }),
            )
            .await;
        assert_eq!(p.settled(&first).await, "done");
        assert_eq!(p.settled(&second).await, "done");
        p.no_pending_orders().await;
        assert_eq!(
            position(&p, &own_key),
            d("0"),
            "round {round}: {:?}",
            sent_since(&p, &own_key, 0)
        );
        assert_eq!(position(&p, &other_key), d("0"));
    }
}

#[tokio::test]
async fn a_plain_signal_is_not_held_back_and_a_position_read_waits_for_the_one_before() {
    let mut p = Pipeline::start(0).await;
    let (_, token, key) = p.trader("held@example.com", json!({}), "100000").await;
    // An earlier signal for the account that some executor holds and has not finished (claimed by
    // a process that is still alive, as far as its lease says).
    let stuck = p
        .signal(&token, json!({ "action": "buy", "quantity": "1", "id": "stuck" }))
        .await;
    let stuck_id: uuid::Uuid = stuck.parse().unwrap();
    let db = p.db().await;
    db.execute(
        "UPDATE signals SET status = 'processing', claimed_by = 'elsewhere', \
         claimed_until = now() + interval '1 hour', attempts = 1 WHERE id = $1",
        &[&stuck_id],
    )
    .await
    .unwrap();
    // A poll interval far beyond the test: a signal claimed here was claimed on a notification.
    for name in ["held-a", "held-b"] {
        p.start_executor_with(move |s| {
            s.executor_id = name.to_owned();
            s.poll_interval = Duration::from_secs(3600);
        });
    }
    wait_for(Duration::from_secs(20), || async {
        (holders(&p).await.values().sum::<i64>() == 1).then_some(())
    })
    .await
    .expect("the account is leased");

    // A plain signal does not read the position: it goes at once, past the unfinished one.
    let plain = p
        .signal(&token, json!({ "action": "buy", "quantity": "1", "id": "plain" }))
        .await;
    assert_eq!(p.settled(&plain).await, "done");
    // Done is the claimer's word; the account's owner may be the other executor, placing the
    // order a moment later: wait for the exchange.
    reaches(&p, &key, "1").await;

    // A target reads it: not claimed while the earlier signal is unfinished.
    let target = p
        .signal(
            &token,
            json!({ "action": "buy", "target_position": "5", "id": "target" }),
        )
        .await;
    let target_id: uuid::Uuid = target.parse().unwrap();
    let status = || async {
        db.query_one("SELECT status FROM signals WHERE id = $1", &[&target_id])
            .await
            .unwrap()
            .get::<_, String>("status")
    };
    // Its own notification and a couple of claims later (other signals' settles announce it too).
    let other = p
        .signal(&token, json!({ "action": "buy", "quantity": "1", "id": "other" }))
        .await;
    assert_eq!(p.settled(&other).await, "done");
    assert_eq!(
        status().await,
        "received",
        "claimed past an unfinished earlier signal"
    );
    reaches(&p, &key, "2").await;

    // The earlier signal is given back and announced; once it is done, the settle announces the
    // waiting target, which then reads the position the earlier one left: 3 bought, not 5.
    db.execute(
        "UPDATE signals SET status = 'received', claimed_by = NULL, claimed_until = NULL WHERE id = $1",
        &[&stuck_id],
    )
    .await
    .unwrap();
    db.execute("SELECT pg_notify('humbex_signals', $1::text)", &[&stuck])
        .await
        .unwrap();
    assert_eq!(p.settled(&stuck).await, "done");
    assert_eq!(p.settled(&target).await, "done");
    reaches(&p, &key, "5").await;
    assert_eq!(
        sent_since(&p, &key, 0),
        [
            ("Buy".into(), d("1"), false),
            ("Buy".into(), d("1"), false),
            ("Buy".into(), d("1"), false),
            ("Buy".into(), d("2"), false)
        ]
    );
}

/// Wait until the account's position at the exchange is `size` (the owner places a claimed
/// signal's order, which may be after the claimer marked the signal done).
async fn reaches(p: &Pipeline, key: &str, size: &str) {
    let want = d(size);
    wait_for(Duration::from_secs(20), || async {
        (position(p, key) == want).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("position {} never reached {size}", position(p, key)));
}
