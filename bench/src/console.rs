//! `console`: how long each console page takes with 10,000 users and 1,000,000 signals (scaled by
//! `--console-users` / `--console-signals`), generated in SQL with generate_series. Each page is
//! requested `REPEATS` times by one signed-in client over loopback HTTP, so each figure is the
//! server-side render (the admin queries and the template) plus a loopback round trip.

use std::time::{Duration, Instant};

use crate::pipeline::{ADMIN, Pipeline};
use crate::report::{self, Row};

/// Requests per page (the first two warm the caches and are not counted).
const REPEATS: usize = 22;

/// Users with active subscriptions (some expiring within a week); signals every 2.5 s back from
/// now (so 1,000,000 span about 29 days), every 50th rejected; an order for every 10th signal,
/// mostly filled (with a fill), some failed or rejected with exchange reasons.
const GENERATE: &str = "\
    INSERT INTO strategies (id, name, webhook_token_digest, webhook_token_prefix) \
        VALUES (gen_random_uuid(), 'bench strategy', sha256('bench-strategy'::bytea), 'hbxs_b'); \
    INSERT INTO users (id, email, webhook_token_digest, webhook_token_prefix, created_at) \
        SELECT gen_random_uuid(), 'user' || i || '@bench.example', sha256(('bench-token-' || i)::bytea), \
               'hbxu_b', now() - i * interval '1 minute' \
        FROM generate_series(1, {users}) i; \
    INSERT INTO subscriptions (id, user_id, strategy_id, status, expires_at) \
        SELECT gen_random_uuid(), u.id, CASE WHEN n % 4 = 0 THEN (SELECT id FROM strategies LIMIT 1) END, \
               'active', now() + (n % 90) * interval '1 day' \
        FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM users) u; \
    WITH u AS (SELECT array_agg(id ORDER BY id) AS ids FROM users), \
    ins AS ( \
        INSERT INTO signals (id, received_at, source, user_id, action, symbol, quantity, raw_body, status, \
                             reject_reason, idempotency_key) \
        SELECT gen_random_uuid(), now() - i * interval '2.5 seconds', 'signed', \
               u.ids[1 + i % array_length(u.ids, 1)], 'buy', 'AVAXUSDT', 1, \
               '{\"token\": \"hbxu_b…[redacted]\", \"action\": \"buy\"}', \
               CASE WHEN i % 50 = 0 THEN 'rejected' ELSE 'done' END, \
               CASE WHEN i % 50 = 0 THEN 'subscription_inactive' END, 'bench:' || i \
        FROM generate_series(1, {signals}) i, u \
        RETURNING id, user_id, received_at, idempotency_key) \
    INSERT INTO orders (id, signal_id, user_id, order_link_id, symbol, side, qty, status, error_code, error, \
                        created_at, submitted_at, acknowledged_at, filled_at, filled_qty, avg_price) \
        SELECT o.id, o.sid, o.user_id, 'hbx-' || replace(o.id::text, '-', ''), 'AVAXUSDT', 'buy', 1, \
               o.status, CASE o.status WHEN 'failed' THEN '110007' WHEN 'rejected' THEN '110017' END, \
               CASE o.status WHEN 'failed' THEN 'ab not enough for new order' \
                             WHEN 'rejected' THEN 'reduce-only order has same side with current position' END, \
               o.received_at + interval '2 ms', o.received_at + interval '4 ms', o.received_at + interval '5 ms', \
               CASE WHEN o.status = 'filled' THEN o.received_at + interval '9 ms' END, \
               CASE WHEN o.status = 'filled' THEN 1 ELSE 0 END, \
               CASE WHEN o.status = 'filled' THEN 25 END \
        FROM (SELECT gen_random_uuid() AS id, id AS sid, user_id, received_at, n, \
                     CASE WHEN n % 200 = 0 THEN 'failed' WHEN n % 330 = 0 THEN 'rejected' ELSE 'filled' END AS status \
              FROM (SELECT *, substr(idempotency_key, 7)::bigint AS n FROM ins) s WHERE n % 10 = 0) o; \
    INSERT INTO fills (exec_id, order_id, qty, price, exec_time, created_at) \
        SELECT 'x-' || id, id, 1, 25, filled_at, filled_at FROM orders WHERE status = 'filled'; \
    VACUUM ANALYZE;";

/// Generate the data, sign in, and time every page.
pub async fn run(users: usize, signals: usize) -> anyhow::Result<Vec<Row>> {
    let pipeline = Pipeline::start().await?;
    let db = pipeline.client().await?;
    let started = Instant::now();
    // VACUUM cannot run inside the transaction a multi-statement batch is, so it runs apart; it
    // stands in for autovacuum, which would have visited tables this size.
    let (generate, vacuum) = GENERATE
        .split_once("VACUUM")
        .expect("the script ends with VACUUM");
    db.batch_execute(
        &generate
            .replace("{users}", &users.to_string())
            .replace("{signals}", &signals.to_string()),
    )
    .await?;
    db.batch_execute(&format!("VACUUM{vacuum}")).await?;
    println!(
        "console: generated {users} users and {signals} signals in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let user: uuid::Uuid = db
        .query_one("SELECT id FROM users ORDER BY email LIMIT 1 OFFSET 7", &[])
        .await?
        .get("id");
    let strategy: uuid::Uuid = db.query_one("SELECT id FROM strategies", &[]).await?.get("id");
    let signal: uuid::Uuid = db
        .query_one(
            "SELECT signal_id FROM orders WHERE status = 'filled' LIMIT 1",
            &[],
        )
        .await?
        .get("signal_id");
    let cookie = sign_in(&pipeline.base).await?;
    let pages = [
        ("overview", "/console".to_owned()),
        ("users", "/console/users".to_owned()),
        ("users, page 100", "/console/users?offset=4950".to_owned()),
        ("users, search", "/console/users?q=user77".to_owned()),
        ("user", format!("/console/users/{user}")),
        ("strategies", "/console/strategies".to_owned()),
        ("strategy", format!("/console/strategies/{strategy}")),
        ("signals", "/console/signals".to_owned()),
        ("signals, live fragment", "/console/signals?fragment=1".to_owned()),
        ("signals of a user", format!("/console/signals?user_id={user}")),
        ("signals rejected", "/console/signals?status=rejected".to_owned()),
        ("signal", format!("/console/signals/{signal}")),
        ("failed orders", "/console/orders".to_owned()),
    ];
    let mut rows = Vec::new();
    for (name, path) in pages {
        let url = format!("{}{path}", pipeline.base);
        let mut latencies = Vec::with_capacity(REPEATS);
        let began = Instant::now();
        for i in 0..REPEATS {
            let sent = Instant::now();
            let resp = pipeline.http.get(&url).header("cookie", &cookie).send().await?;
            let status = resp.status();
            let _ = resp.bytes().await?;
            anyhow::ensure!(status == 200, "{path} answered {status}");
            if i >= 2 {
                latencies.push(sent.elapsed());
            }
        }
        rows.push(report::row(
            &format!("console {name}"),
            1,
            latencies,
            began.elapsed(),
        ));
    }
    pipeline.shutdown().await;
    Ok(rows)
}

/// Sign in to the console at `base` as a browser does; the answer is the Cookie header for the
/// session.
pub async fn sign_in(base: &str) -> anyhow::Result<String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()?;
    let form = http.get(format!("{base}/console/sign-in")).send().await?;
    let pre = cookie_pair(&form, "humbex_console_sign_in")?;
    let page = form.text().await?;
    let at = page
        .find("name=\"csrf_token\" value=\"")
        .ok_or_else(|| anyhow::anyhow!("no CSRF field on the sign-in page"))?
        + 25;
    let csrf = &page[at..at + 64];
    let resp = http
        .post(format!("{base}/console/sign-in"))
        .header("cookie", pre)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={csrf}&token={ADMIN}"))
        .send()
        .await?;
    anyhow::ensure!(resp.status() == 303, "sign-in answered {}", resp.status());
    cookie_pair(&resp, "humbex_console")
}

fn cookie_pair(resp: &reqwest::Response, name: &str) -> anyhow::Result<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no {name} cookie"))
}
