//! Several executors sharing the accounts (docs/deployment.md#several-executors): one private
//! stream per account across the fleet (the paper exchange counts them), an even share each, a
//! killed executor's accounts taken over within the lease, a stopped one's at once, and every
//! order placed exactly once under a stream of strategy signals.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Pipeline, wait_for};

/// Executors named `fleet-<n>`, with a lease of `lease` and connects not limiting the test.
pub(crate) fn start(p: &mut Pipeline, name: &str, lease: Duration) {
    let name = name.to_owned();
    p.start_executor_with(move |s| {
        s.executor_id = name;
        s.lease = lease;
        s.stream_connects_per_minute = 60_000;
    });
}

/// A strategy with `n` subscribers; returns its webhook token and the subscribers' API keys.
pub(crate) async fn strategy_with_subscribers(p: &Pipeline, n: usize) -> (String, Vec<String>) {
    let strategy = p
        .admin(
            reqwest::Method::POST,
            "/admin/strategies",
            json!({ "name": "fleet" }),
        )
        .await;
    let sid = strategy["id"].as_str().unwrap().to_owned();
    let mut keys = Vec::new();
    for i in 0..n {
        let (_, _, key) = p
            .trader(
                &format!("fleet{i}@example.com"),
                json!({ "strategy_id": sid }),
                "1000000",
            )
            .await;
        keys.push(key);
    }
    (strategy["webhook_token"].as_str().unwrap().to_owned(), keys)
}

/// Accounts held per executor (live leases only).
pub(crate) async fn holders(p: &Pipeline) -> BTreeMap<String, i64> {
    p.db()
        .await
        .query(
            "SELECT executor_id, count(*) AS n FROM account_leases WHERE leased_until > now() \
             GROUP BY executor_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("executor_id"), r.get("n")))
        .collect()
}

/// Private connections per key at the paper exchange.
fn connections(p: &Pipeline, keys: &[String]) -> Vec<usize> {
    keys.iter()
        .map(|k| p.paper.exchange().private_connections(k))
        .collect()
}

/// Wait until the leases are spread as `want` (executor → accounts) and every key has exactly
/// one stream open; panics with what was seen after `limit`.
pub(crate) async fn wait_spread(
    p: &Pipeline,
    keys: &[String],
    want: &BTreeMap<String, i64>,
    limit: Duration,
) {
    let reached = wait_for(limit, || async {
        (holders(p).await == *want && connections(p, keys).iter().all(|c| *c == 1)).then_some(())
    })
    .await;
    assert!(
        reached.is_some(),
        "wanted {want:?} and one stream per key; leases {:?}, streams {:?}",
        holders(p).await,
        connections(p, keys)
    );
}

#[tokio::test]
async fn three_executors_share_the_accounts_one_stream_each_and_orders_once() {
    let mut p = Pipeline::start(0).await;
    let (token, keys) = strategy_with_subscribers(&p, 6).await;
    for name in ["fleet-a", "fleet-b", "fleet-c"] {
        start(&mut p, name, Duration::from_secs(3));
    }
    let even = BTreeMap::from([
        ("fleet-a".to_owned(), 2),
        ("fleet-b".to_owned(), 2),
        ("fleet-c".to_owned(), 2),
    ]);
    wait_spread(&p, &keys, &even, Duration::from_secs(20)).await;

    // A stream of strategy signals: each fans out to the six accounts, owned by three executors.
    let signals = 12;
    for i in 0..signals {
        let side = if i % 2 == 0 { "buy" } else { "sell" };
        p.signal(
            &token,
            json!({ "action": side, "quantity": "1", "id": format!("fleet-{i}") }),
        )
        .await;
    }
    for key in &keys {
        let placed = wait_for(Duration::from_secs(20), || async {
            let orders = p.exchange_orders(key);
            (orders.len() >= signals).then_some(orders)
        })
        .await
        .unwrap_or_else(|| panic!("{key}: {:?}", p.exchange_orders(key)));
        let mut links: Vec<_> = placed.iter().map(|o| o.3.clone()).collect();
        links.sort();
        links.dedup();
        assert_eq!(links.len(), signals, "{key}: one order per signal");
    }
    p.no_pending_orders().await;
    for key in &keys {
        assert_eq!(p.exchange_orders(key).len(), signals, "{key}: exactly once");
    }
    assert_eq!(connections(&p, &keys), vec![1; 6], "still one stream per account");
}

#[tokio::test]
async fn a_killed_executors_accounts_move_within_the_lease() {
    let lease = Duration::from_secs(3);
    let mut p = Pipeline::start(0).await;
    let (token, keys) = strategy_with_subscribers(&p, 4).await;
    start(&mut p, "fleet-a", lease);
    start(&mut p, "fleet-b", lease);
    let even = BTreeMap::from([("fleet-a".to_owned(), 2), ("fleet-b".to_owned(), 2)]);
    wait_spread(&p, &keys, &even, Duration::from_secs(20)).await;

    p.kill_executor(0);
    let killed = Instant::now();
    let all_b = BTreeMap::from([("fleet-b".to_owned(), 4)]);
    // The lease runs out at most a lease after the kill, and the survivor's next pass (every third
    // of the lease) takes the accounts.
    wait_spread(&p, &keys, &all_b, lease * 2).await;
    let moved = killed.elapsed();
    assert!(
        moved <= lease + lease / 3 + Duration::from_millis(500),
        "{moved:?}"
    );
    assert!(
        moved >= lease / 2,
        "taken over before the lease could run out: {moved:?}"
    );

    let s = p
        .signal(&token, json!({ "action": "buy", "quantity": "1" }))
        .await;
    assert_eq!(p.settled(&s).await, "done");
    p.no_pending_orders().await;
    for key in &keys {
        assert_eq!(p.exchange_orders(key).len(), 1, "{key}");
    }
}

#[tokio::test]
async fn a_stopped_executor_hands_its_accounts_over_at_once() {
    // A lease far longer than the hand-over may take: only the release can explain it.
    let lease = Duration::from_secs(30);
    let mut p = Pipeline::start(0).await;
    let (token, keys) = strategy_with_subscribers(&p, 4).await;
    start(&mut p, "fleet-a", lease);
    start(&mut p, "fleet-b", lease);
    // With a long lease the first executor's pass that gives back half runs when the second
    // announces itself on `humbex_accounts`, or at its next pass (a third of the lease).
    let even = BTreeMap::from([("fleet-a".to_owned(), 2), ("fleet-b".to_owned(), 2)]);
    wait_spread(&p, &keys, &even, lease).await;

    let stopping = Instant::now();
    p.stop_executor(0).await;
    let all_b = BTreeMap::from([("fleet-b".to_owned(), 4)]);
    wait_spread(&p, &keys, &all_b, Duration::from_secs(5)).await;
    assert!(stopping.elapsed() < lease / 4, "{:?}", stopping.elapsed());
    let gone = p
        .db()
        .await
        .query_one("SELECT count(*) AS n FROM executors WHERE id = 'fleet-a'", &[])
        .await
        .unwrap()
        .get::<_, i64>("n");
    assert_eq!(gone, 0, "the stopped executor left the fleet");

    let s = p
        .signal(&token, json!({ "action": "buy", "quantity": "1" }))
        .await;
    assert_eq!(p.settled(&s).await, "done");
    p.no_pending_orders().await;
    for key in &keys {
        assert_eq!(p.exchange_orders(key).len(), 1, "{key}");
    }
}

/// The claimer's routing (sql/V8 `ROUTE`): of a batch's pending orders it keeps those of accounts
/// it owns and of accounts nobody holds (taking their leases), and leaves another live owner's to
/// that owner; an order whose key is unusable it keeps, to answer it without sending.
#[tokio::test]
async fn a_claimer_places_only_its_own_accounts_orders() {
    let p = Pipeline::start(0).await;
    for i in 0..3 {
        p.trader(&format!("route{i}@example.com"), json!({}), "1000")
            .await;
    }
    let db = p.db().await;
    let keys: Vec<uuid::Uuid> = db
        .query("SELECT id FROM api_keys ORDER BY created_at, id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("id"))
        .collect();
    let (mine, theirs, nobodys) = (keys[0], keys[1], keys[2]);
    db.batch_execute(
        "INSERT INTO executors (id, alive_until) VALUES \
           ('fleet-x', now() + interval '1 minute'), ('fleet-y', now() + interval '1 minute')",
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO account_leases (api_key_id, executor_id, leased_until) VALUES \
           ($1, 'fleet-x', now() + interval '1 minute'), ($2, 'fleet-y', now() + interval '1 minute')",
        &[&mine, &theirs],
    )
    .await
    .unwrap();
    let order = |api_key_id: uuid::Uuid, key_usable: bool| humbex_executor::orders::PendingOrder {
        id: uuid::Uuid::now_v7(),
        signal_id: uuid::Uuid::now_v7(),
        user_id: uuid::Uuid::now_v7(),
        api_key_id,
        order_link_id: "hbx-test".into(),
        symbol: "AVAXUSDT".into(),
        side: "buy".into(),
        qty: rust_decimal::Decimal::ONE,
        reduce_only: false,
        attempts: 0,
        leg: "single".into(),
        order_type: "market".into(),
        limit_price: None,
        time_in_force: None,
        trigger_price: None,
        take_profit: None,
        stop_loss: None,
        key_enc: Vec::new(),
        secret_enc: Vec::new(),
        key_usable,
    };
    let batch = vec![
        order(mine, true),
        order(theirs, true),
        order(nobodys, true),
        order(theirs, false),
    ];
    let expected: Vec<uuid::Uuid> = [0, 2, 3].iter().map(|i| batch[*i].id).collect();
    let ownership = humbex_executor::ownership::Ownership::new("fleet-x".into(), Duration::from_secs(60), 60);
    let pool = humbex_shared::db::pool(&p.db.url, 2).unwrap();
    let client = pool.get().await.unwrap();
    let kept: Vec<uuid::Uuid> = ownership
        .keep_mine(&client, batch)
        .await
        .iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(kept, expected);
    let holder: String = db
        .query_one(
            "SELECT executor_id FROM account_leases WHERE api_key_id = $1",
            &[&nobodys],
        )
        .await
        .unwrap()
        .get("executor_id");
    assert_eq!(holder, "fleet-x");
    assert_eq!(
        holders(&p).await,
        BTreeMap::from([("fleet-x".to_owned(), 2), ("fleet-y".to_owned(), 1)]),
        "the other owner's account stays its own"
    );
}
