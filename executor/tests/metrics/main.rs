//! The metrics end to end: ingest, an executor and the paper exchange in-process on a fresh
//! database, the process's `/metrics` listener on port 0, and a real Prometheus (Debian's
//! `/usr/bin/prometheus`) scraping it. The registry is per process, so the tests of this binary
//! take turns (`TURN`) and compare values before and after what they do.

#[allow(dead_code)]
#[path = "../pipeline/harness.rs"]
mod harness;
mod prometheus;

use std::time::Duration;

use humbex_paper_exchange::Fault;
use humbex_shared::metrics::MetricsServer;
use serde_json::json;

use harness::{Pipeline, wait_for};

/// One test at a time touches this process's metrics.
pub static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The process's metrics listener on a free port; serves until the test's runtime ends.
pub async fn serve_metrics() -> String {
    let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("metrics listener");
    let url = format!("http://{}/metrics", server.local_addr());
    tokio::spawn(server.run_until(std::future::pending::<()>()));
    url
}

/// One scrape: the page as (series, value) lines.
pub struct Page(String);

impl Page {
    pub async fn scrape(url: &str) -> Page {
        let resp = reqwest::get(url).await.expect("scrape");
        assert_eq!(resp.status(), 200);
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        Page(resp.text().await.unwrap())
    }

    /// The value of `series` (name with its labels, exactly as printed); 0 when absent.
    pub fn get(&self, series: &str) -> f64 {
        self.0
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }
}

const ACCEPTED: &str = r#"humbex_webhooks_total{route="signed",outcome="accepted"}"#;
const DUPLICATE: &str = r#"humbex_webhooks_total{route="signed",outcome="duplicate"}"#;
const UNAUTHORIZED: &str = r#"humbex_webhooks_total{route="signed",outcome="rejected_unauthorized"}"#;
const SIGNED_DURATIONS: &str = r#"humbex_webhook_duration_seconds_count{route="signed"}"#;
const TO_ORDER: &str = "humbex_signal_to_order_seconds_count";
const TO_FILL: &str = "humbex_order_to_fill_seconds_count";
const SUBMITTED: &str = r#"humbex_orders_total{origin="signal",status="submitted"}"#;
const FILLED: &str = r#"humbex_orders_total{origin="signal",status="filled"}"#;
const CREATES: &str = r#"humbex_exchange_request_duration_seconds_count{endpoint="/v5/order/create"}"#;
const RATE_LIMITED: &str = r#"humbex_exchange_errors_total{code="10006"}"#;
const CONNECTED_STREAMS: &str = r#"humbex_private_streams{state="connected"}"#;

#[tokio::test]
async fn a_signal_moves_the_counters_and_histograms() {
    let _turn = TURN.lock().await;
    let url = serve_metrics().await;
    let p = Pipeline::start(1).await;
    let (_, token, key) = p.trader("metrics@example.com", json!({}), "10000").await;
    let before = Page::scrape(&url).await;
    assert!(before.get("process_resident_memory_bytes") > 0.0);

    // The first order create is refused with 10006 and retried: one exchange error, one order.
    p.paper
        .exchange()
        .add_fault(Fault::RateLimitBurst {
            count: 1,
            api_key: Some(key.clone()),
        })
        .unwrap();
    let body = json!({ "token": token, "symbol": "AVAXUSDT", "action": "buy", "quantity": "1", "id": "m1" });
    let signal = p
        .signal(&token, json!({ "action": "buy", "quantity": "1", "id": "m1" }))
        .await;
    assert_eq!(p.settled(&signal).await, "done");
    // The same signal again is a duplicate; an unsigned one is refused.
    let signed = |body: &serde_json::Value| {
        let text = body.to_string();
        p.http
            .post(format!("{}/webhook", p.base))
            .header("content-type", "application/json")
            .header(
                "x-signature",
                humbex_ingest::webhook::signature::sign_x_signature(
                    harness::SECRET.as_bytes(),
                    text.as_bytes(),
                ),
            )
            .body(text)
    };
    assert_eq!(signed(&body).send().await.unwrap().status(), 200);
    let unsigned = p
        .http
        .post(format!("{}/webhook", p.base))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);

    // The fill arrives on the private stream a moment after the answer.
    let after = wait_for(Duration::from_secs(10), || async {
        let page = Page::scrape(&url).await;
        (page.get(FILLED) > before.get(FILLED)).then_some(page)
    })
    .await
    .expect("the fill was never counted");
    let moved = |series: &str| after.get(series) - before.get(series);
    assert_eq!(moved(ACCEPTED), 1.0);
    assert_eq!(moved(DUPLICATE), 1.0);
    assert_eq!(moved(UNAUTHORIZED), 1.0);
    assert_eq!(moved(SIGNED_DURATIONS), 3.0);
    assert_eq!(moved(TO_ORDER), 1.0);
    assert_eq!(moved(SUBMITTED), 1.0);
    assert_eq!(moved(FILLED), 1.0);
    assert_eq!(moved(TO_FILL), 1.0);
    assert_eq!(moved(RATE_LIMITED), 1.0);
    assert_eq!(
        moved(CREATES),
        2.0,
        "the refused create and the one that placed the order"
    );
    assert!(after.get("humbex_signal_to_order_seconds_sum") > 0.0);
    assert!(after.get("humbex_listen_connected") >= 1.0);
    assert!(after.get(CONNECTED_STREAMS) >= 1.0);
    // The pending gauges are counted from the database: nothing is left once the signal is done.
    let settled = wait_for(Duration::from_secs(15), || async {
        let page = Page::scrape(&url).await;
        (page.0.contains("# TYPE humbex_signals_pending gauge")
            && page.get("humbex_signals_pending") == 0.0
            && page.get("humbex_signals_pending_oldest_seconds") == 0.0)
            .then_some(())
    })
    .await;
    assert!(settled.is_some(), "signals_pending did not read 0");
}

const TAKE_PROFIT_FILLED: &str = r#"humbex_orders_total{origin="take_profit",status="filled"}"#;
const SET_LEVERAGE: &str =
    r#"humbex_exchange_request_duration_seconds_count{endpoint="/v5/position/set-leverage"}"#;

/// The orders the exchange creates are counted under their own origin (the row's `origin`
/// column), and the v2 calls (leverage) are timed like every other request.
#[tokio::test]
async fn an_exchange_created_take_profit_counts_under_its_own_origin() {
    let _turn = TURN.lock().await;
    let url = serve_metrics().await;
    let p = Pipeline::start(1).await;
    let (_, token, _key) = p
        .trader("metrics-tp@example.com", json!({ "leverage": "5" }), "10000")
        .await;
    let before = Page::scrape(&url).await;
    // Long at 25 with a take profit at 30 on the order itself; leverage 5 is set first.
    let signal = p
        .signal(
            &token,
            json!({ "action": "buy", "quantity": "1", "take_profit": "30", "id": "tp1" }),
        )
        .await;
    assert_eq!(p.settled(&signal).await, "done");
    let entry_filled = wait_for(Duration::from_secs(10), || async {
        let page = Page::scrape(&url).await;
        (page.get(FILLED) > before.get(FILLED)).then_some(page)
    })
    .await
    .expect("the entry's fill was never counted");
    assert_eq!(
        entry_filled.get(TAKE_PROFIT_FILLED),
        before.get(TAKE_PROFIT_FILLED)
    );

    // The price passes the take profit: the exchange closes the position with an order of its own.
    p.paper
        .exchange()
        .set_price("AVAXUSDT", "30.5".parse().unwrap())
        .unwrap();
    let after = wait_for(Duration::from_secs(10), || async {
        let page = Page::scrape(&url).await;
        (page.get(TAKE_PROFIT_FILLED) > before.get(TAKE_PROFIT_FILLED)).then_some(page)
    })
    .await
    .expect("the take-profit order's fill was never counted under origin take_profit");
    let moved = |series: &str| after.get(series) - before.get(series);
    assert_eq!(moved(TAKE_PROFIT_FILLED), 1.0);
    assert_eq!(moved(FILLED), 1.0, "the entry only: origin signal");
    assert_eq!(moved(SUBMITTED), 1.0);
    assert_eq!(
        moved(TO_FILL),
        1.0,
        "only HUMBEX's own order is timed to its fill"
    );
    assert!(moved(SET_LEVERAGE) >= 1.0, "set-leverage is observed");
}

#[tokio::test]
async fn the_listener_serves_only_get_metrics() {
    let url = serve_metrics().await;
    let http = reqwest::Client::new();
    let post = http.post(&url).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    let other = http.get(url.replace("/metrics", "/admin")).send().await.unwrap();
    assert_eq!(other.status(), 404);
    let body: serde_json::Value = other.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}
