//! With DATABASE_URL through a real PgBouncer in transaction mode (the distribution's package) and
//! DATABASE_DIRECT_URL straight to PostgreSQL, ingest and the executor work end to end: webhooks
//! become filled orders at the paper exchange, each exactly once.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use support::services::{PgBouncer, Services};
use support::tcp_postgres::{TcpPostgres, work_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_and_executor_work_through_pgbouncer_in_transaction_mode() {
    humbex_bybit::ensure_crypto_provider();
    let dir = work_dir("pgbouncer");
    let pg = TcpPostgres::init(&dir, "data", "");
    pg.start();
    // Two server connections for every client: consecutive statements of one client land on
    // different server connections, as they do under load on a managed pooler.
    let bouncer = PgBouncer::start(&dir, pg.port, 2);
    let pooled = format!(
        "postgres://postgres@127.0.0.1:{}/humbex?sslmode=disable",
        bouncer.port
    );
    let direct = pg.url("127.0.0.1", "humbex", "sslmode=disable");
    let mut services = Services::new(&dir, pooled, Some(direct.clone()));
    // Sweeps only every 60 s: everything below within the deadline came through LISTEN, which
    // works only on the direct connection.
    services.poll_interval = "60".into();
    services.start().await;
    let (token, keys) = services.traders(3).await;

    let signals = 24;
    let sends = (0..signals).map(|i| {
        let services = &services;
        let token = token.clone();
        async move {
            let action = if i % 2 == 0 { "buy" } else { "sell" };
            services.signal(&token, &format!("bouncer-{i}"), action).await
        }
    });
    let answers = futures_util::future::join_all(sends).await;
    for (status, body) in &answers {
        assert_eq!(*status, 202, "{body} (ingest log: {})", services.log("ingest"));
    }

    let deadline = Instant::now() + Duration::from_secs(40);
    let expected = signals * keys.len();
    loop {
        let mut filled = 0;
        for key in &keys {
            filled += services
                .orders_at_exchange(key)
                .await
                .iter()
                .filter(|(_, status)| status == "Filled")
                .count();
        }
        if filled >= expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{filled} of {expected} orders filled; executor log: {}",
            services.log("executor")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Exactly once at the exchange, and every fill recorded in the database.
    let mut links = HashSet::new();
    let mut total = 0;
    for key in &keys {
        for (link, _) in services.orders_at_exchange(key).await {
            total += 1;
            links.insert(link);
        }
    }
    assert_eq!(total, expected, "orders at the exchange");
    assert_eq!(links.len(), expected, "no orderLinkId twice");
    let db = humbex_shared::db::connect(&direct.parse().unwrap())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row = db
            .query_one(
                "SELECT (SELECT count(*) FROM signals WHERE status = 'done') AS done, \
                        (SELECT count(*) FROM orders WHERE status = 'filled') AS filled",
                &[],
            )
            .await
            .unwrap();
        let (done, filled): (i64, i64) = (row.get("done"), row.get("filled"));
        if done == signals as i64 && filled == expected as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{done} signals done, {filled} orders filled in the database"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The admin API's reads and readiness work through the pooler too.
    let first = answers[0].1["signal_id"].as_str().unwrap().to_owned();
    let signal = services.admin_get(&format!("/admin/signals/{first}")).await;
    assert_eq!(
        signal["orders"].as_array().map(Vec::len),
        Some(keys.len()),
        "{signal}"
    );
    for path in [
        "/admin/users",
        "/admin/strategies",
        "/admin/signals",
        "/admin/orders",
    ] {
        services.admin_get(path).await;
    }
    let ready = reqwest::get(format!("{}/ready", services.ingest_url()))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let errors = [services.log("ingest"), services.log("executor")].join("\n");
    assert!(!errors.contains("prepared statement"), "{errors}");
    services.stop().await;
    drop(bouncer);
    drop(pg);
    let _ = std::fs::remove_dir_all(dir);
}
