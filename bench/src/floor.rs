//! The floor: one-statement INSERT+NOTIFY into the real signals table, back to back on N
//! connections, with a LISTEN connection timing each notification's arrival.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use humbex_shared::db::TestDatabase;

use crate::report::{Row, row};

const FLOOR_INSERT: &str = "\
    WITH ins AS ( \
        INSERT INTO signals (id, source, user_id, action, symbol, quantity, raw_body, idempotency_key) \
        VALUES ($1, 'signed', $2, 'buy', 'AVAXUSDT', 1, $3, $4) RETURNING id) \
    SELECT id, pg_notify('humbex_signals', id::text) FROM ins";

pub async fn run(levels: &[usize], step: Duration) -> anyhow::Result<Vec<Row>> {
    let db = TestDatabase::create().await?;
    let pg = db.url.pg_config();
    let setup = humbex_shared::db::connect(&pg).await?;
    let user = uuid::Uuid::now_v7();
    setup
        .execute(
            "INSERT INTO users (id, email, webhook_token_digest, webhook_token_prefix) VALUES ($1, 'floor@bench', $2, 'x')",
            &[&user, &vec![0u8; 32]],
        )
        .await?;
    let mut rows = Vec::new();
    for &conns in levels {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let client = humbex_shared::db::connect(&pg).await?;
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let stmt = client.prepare(FLOOR_INSERT).await?;
                let body = r#"{"token":"hbxu_…","action":"buy","symbol":"AVAXUSDT","quantity":"1"}"#;
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let id = uuid::Uuid::now_v7();
                    let key = format!("floor:{id}");
                    let started = Instant::now();
                    client.query(&stmt, &[&id, &user, &body, &key]).await?;
                    latencies.push(started.elapsed());
                }
                Ok::<_, anyhow::Error>(latencies)
            }));
        }
        let started = Instant::now();
        tokio::time::sleep(step).await; // the measuring window itself, not a wait for a condition
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await??);
        }
        rows.push(row(
            "floor: INSERT+NOTIFY (1 statement)",
            conns,
            all,
            started.elapsed(),
        ));
    }
    Ok(rows)
}
