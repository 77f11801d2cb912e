//! Failover between two real PostgreSQL clusters with streaming replication: DATABASE_URL names
//! both hosts with `target_session_attrs=read-write`. While webhooks flow, the primary is stopped
//! (immediately, as a crash) and the standby promoted: ingest answers 503 for the seconds it takes
//! (and a sender retries, as TradingView does), the executor reconnects to the new primary and
//! LISTENs there again, and every accepted signal becomes exactly one filled order per trader.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::services::Services;
use support::tcp_postgres::{TcpPostgres, work_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promoting_the_standby_loses_and_doubles_nothing() {
    humbex_bybit::ensure_crypto_provider();
    let dir = work_dir("failover");
    let primary = TcpPostgres::init(&dir, "primary", "wal_level = replica\nmax_wal_senders = 4\n");
    primary.start();
    let standby = TcpPostgres::standby_of(&primary, &dir, "standby");
    standby.start();
    // Synchronous replication, set on the primary only (after the base backup, so the standby
    // does not wait for a standby of its own once promoted): a commit ingest has answered is on
    // both clusters.
    primary.append_conf("synchronous_standby_names = '*'\n");
    primary.reload();

    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/humbex?target_session_attrs=read-write&sslmode=disable",
        primary.port, standby.port
    );
    let mut services = Services::new(&dir, url, None);
    services.poll_interval = "1".into();
    services.start().await;
    let (token, keys) = services.traders(2).await;

    // Signals at a steady pace; each is resent until ingest takes it (202, or 200 when an earlier
    // try was stored), as TradingView retries.
    let signals = 40;
    let accepted = Arc::new(AtomicUsize::new(0));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let services = Arc::new(services);
    let sender = {
        let (services, token, accepted) = (services.clone(), token.clone(), accepted.clone());
        let unavailable = unavailable.clone();
        tokio::spawn(async move {
            let mut answers: HashMap<u16, usize> = HashMap::new();
            let mut ids = Vec::new();
            for i in 0..signals {
                let id = format!("failover-{i}");
                let action = if i % 2 == 0 { "buy" } else { "sell" };
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let (status, body) = services.signal(&token, &id, action).await;
                    *answers.entry(status).or_default() += 1;
                    if status == 503 {
                        unavailable.fetch_add(1, Ordering::SeqCst);
                    }
                    if status == 202 || status == 200 {
                        ids.push(body["signal_id"].as_str().unwrap().to_owned());
                        accepted.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "signal {id} never accepted: {answers:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (answers, ids)
        })
    };

    // A third of the way in, the primary dies and the standby takes over.
    let deadline = Instant::now() + Duration::from_secs(30);
    while accepted.load(Ordering::SeqCst) < signals / 3 {
        assert!(Instant::now() < deadline, "signals are not being accepted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    primary.stop();
    // No primary now: ingest says so (503) within its database budget, rather than hanging.
    let deadline = Instant::now() + Duration::from_secs(30);
    while unavailable.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "ingest never answered 503 without a primary"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    standby.promote();
    let (answers, ids) = sender.await.unwrap();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), signals, "{answers:?}");
    eprintln!("webhook answers by status: {answers:?}");
    // The switch was seen (ingest said 503 while no primary answered), and nothing but
    // "unavailable" was answered meanwhile (0: the request itself timed out); never a 500.
    assert!(answers.get(&503).is_some_and(|n| *n > 0), "{answers:?}");
    for status in answers.keys() {
        assert!(
            [0, 200, 202, 503].contains(status),
            "{answers:?}; ingest log: {}",
            services.log("ingest")
        );
    }

    // Every signal, exactly one filled order per trader, at the exchange and in the database.
    let expected = signals * keys.len();
    let deadline = Instant::now() + Duration::from_secs(60);
    let links = loop {
        let mut links = Vec::new();
        let mut filled = 0;
        for key in &keys {
            for (link, status) in services.orders_at_exchange(key).await {
                filled += usize::from(status == "Filled");
                links.push(link);
            }
        }
        if filled >= expected {
            break links;
        }
        assert!(
            Instant::now() < deadline,
            "{filled} of {expected} orders filled; executor log: {}",
            services.log("executor")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(links.len(), expected, "orders at the exchange");
    assert_eq!(
        links.iter().collect::<HashSet<_>>().len(),
        expected,
        "an orderLinkId twice"
    );

    let new_primary = humbex_shared::db::connect(
        &standby
            .url("127.0.0.1", "humbex", "sslmode=disable")
            .parse()
            .unwrap(),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = new_primary
            .query_one(
                "SELECT (SELECT count(*) FROM signals WHERE status = 'done') AS done, \
                        (SELECT count(*) FROM orders WHERE status = 'filled') AS filled, \
                        (SELECT count(*) FROM orders) AS orders",
                &[],
            )
            .await
            .unwrap();
        let (done, filled, orders): (i64, i64, i64) = (row.get("done"), row.get("filled"), row.get("orders"));
        if done == signals as i64 && filled == expected as i64 {
            assert_eq!(orders, expected as i64);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{done} signals done, {filled}/{orders} orders filled"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The executor listens on the new primary: its LISTEN connection is there.
    let listening: i64 = new_primary
        .query_one(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'humbex-executor-listen'",
            &[],
        )
        .await
        .unwrap()
        .get("n");
    assert_eq!(listening, 1);

    let mut services = Arc::into_inner(services).expect("sender finished");
    services.stop().await;
    drop(standby);
    drop(primary);
    let _ = std::fs::remove_dir_all(dir);
}
