//! Racing alerts for one account across the fleet (docs/trading-v2-executor.md#racing-alerts-for-one-account):
//! a signal whose plan reads the position is claimed only after every earlier signal on its
//! accounts is finished and placed, whichever executor claimed or owns what; plain signals are
//! never held back. The paper exchange's positions and orders are the witness.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::fleet::{holders, start, strategy_with_subscribers, wait_spread};
use crate::harness::{Pipeline, wait_for};
use crate::v2::{d, position, rounds_of_two_then_five_then_flat, send, sent_since};

#[tokio::test]
async fn racing_target_alerts_across_two_executors_end_at_the_last_target() {
    let mut p = Pipeline::start(0).await;
    // Four accounts, two owned by each executor: whichever claims a signal, two of its accounts'
    // orders are placed by the other one.
    let (token, keys) = strategy_with_subscribers(&p, 4).await;
    two_executors_split(&mut p, "race", &keys).await;

    for round in 0..3 {
        // Back to back, from flat: 2 then 5 must end at 5 (buy 2, buy 3), never 7 (both read 0).
        back_to_back(
            &p,
            (
                &token,
                json!({ "action": "buy", "target_position": "2", "id": format!("two-{round}") }),
            ),
            (
                &token,
                json!({ "action": "buy", "target_position": "5", "id": format!("five-{round}") }),
            ),
        )
        .await;
        for key in &keys {
            assert_eq!(
                position(&p, key),
                d("5"),
                "round {round}, {key}: {:?}",
                sent_since(&p, key, 0)
            );
        }
        send(
            &p,
            &token,
            json!({ "action": "sell", "target_position": "0", "id": format!("flat-{round}") }),
        )
        .await;
        p.no_pending_orders().await;
        for key in &keys {
            assert_eq!(position(&p, key), d("0"), "round {round}, {key}");
        }
    }
    for key in &keys {
        rounds_of_two_then_five_then_flat(&p, key);
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
    two_executors_split(&mut p, "mixed", &[own_key.clone(), other_key.clone()]).await;

    for round in 0..2 {
        // The strategy's target, then the user's own: the user's account ends at its own target.
        back_to_back(
            &p,
            (
                &strategy_token,
                json!({ "action": "buy", "target_position": "2", "id": format!("s2-{round}") }),
            ),
            (
                &own_token,
                json!({ "action": "buy", "target_position": "5", "id": format!("u5-{round}") }),
            ),
        )
        .await;
        assert_eq!(
            position(&p, &own_key),
            d("5"),
            "round {round}: {:?}",
            sent_since(&p, &own_key, 0)
        );
        assert_eq!(position(&p, &other_key), d("2"));
        // The other way round: the user's own, then the strategy's, which both accounts end at.
        back_to_back(
            &p,
            (
                &own_token,
                json!({ "action": "sell", "target_position": "1", "id": format!("u1-{round}") }),
            ),
            (
                &strategy_token,
                json!({ "action": "sell", "target_position": "0", "id": format!("s0-{round}") }),
            ),
        )
        .await;
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

/// Two executors, `<prefix>-a` and `<prefix>-b` (3 s leases), started and waited for until each owns
/// half of `keys` with one stream per key, so a claimed signal's orders are partly placed by the
/// executor that did not claim it.
async fn two_executors_split(p: &mut Pipeline, prefix: &str, keys: &[String]) {
    let (a, b) = (format!("{prefix}-a"), format!("{prefix}-b"));
    start(p, &a, Duration::from_secs(3));
    start(p, &b, Duration::from_secs(3));
    let half = i64::try_from(keys.len() / 2).unwrap();
    let even = BTreeMap::from([(a, half), (b, half)]);
    wait_spread(p, keys, &even, Duration::from_secs(20)).await;
}

/// Two signals sent back to back, the second before the first is carried out; returns once both
/// are done and no order is left pending.
async fn back_to_back(p: &Pipeline, first: (&str, Value), second: (&str, Value)) {
    let first = p.signal(first.0, first.1).await;
    let second = p.signal(second.0, second.1).await;
    assert_eq!(p.settled(&first).await, "done", "signal {first}");
    assert_eq!(p.settled(&second).await, "done", "signal {second}");
    p.no_pending_orders().await;
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
