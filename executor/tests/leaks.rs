//! No secret reaches a log line while orders flow: exchange keys and secrets, webhook tokens, the
//! TradingView secret, the admin token and the encryption key, across ingest, the executor, the
//! Bybit client and the paper exchange, with every humbex crate logging at trace level. A panic is
//! induced in a signal task (failpoint `panic:after_claim`) and reported through `humbex`'s panic
//! hook, so the panic output is in the capture too.

#[path = "pipeline/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use humbex_paper_exchange::Fault;
use serde_json::json;

use harness::Pipeline;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_reaches_any_log_line_while_orders_flow() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_env_filter("trace,tokio=info,runtime=info,hyper=info,h2=info,reqwest=info,rustls=info,tungstenite=info,tokio_tungstenite=info,tokio_postgres=info,deadpool=info")
        .with_writer(move || writer.clone())
        // Span fields are where an instrumented argument would leak: print every span's fields.
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::NEW | tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .init();
    // SAFETY: the only test in this binary, and no other thread reads the environment yet.
    unsafe { std::env::set_var("HUMBEX_FAILPOINT", "panic:after_claim") };
    humbex_shared::hardening::install_panic_hook();

    let p = Pipeline::start(1).await;
    let (_, token, key) = p.trader("leak@example.com", json!({}), "10000").await;
    // Orders that fill, one refused by the exchange, a 5xx after placing, a dropped stream.
    let buy = p
        .signal(&token, json!({ "action": "buy", "quantity": "1", "id": "l1" }))
        .await;
    assert_eq!(p.settled(&buy).await, "done");
    p.paper
        .exchange()
        .add_fault(Fault::OrderCreateHttpError {
            count: 1,
            status: 502,
            after_placing: true,
            api_key: Some(key.clone()),
        })
        .unwrap();
    p.paper
        .exchange()
        .add_fault(Fault::DropWsConnections {
            api_key: Some(key.clone()),
        })
        .unwrap();
    let sell = p
        .signal(&token, json!({ "action": "sell", "quantity": "1", "id": "l2" }))
        .await;
    assert_eq!(p.settled(&sell).await, "done");
    let huge = p
        .signal(&token, json!({ "action": "buy", "quantity": "5000", "id": "l3" }))
        .await;
    assert_eq!(p.settled(&huge).await, "done");
    // A key whose secret the exchange refuses: marked unusable, with its reason logged.
    let (_, bad_token, bad_key) = p.trader("leak-bad@example.com", json!({}), "10000").await;
    p.paper
        .exchange()
        .add_fault(Fault::OrderCreateRetCode {
            count: 1,
            ret_code: 10004,
            ret_msg: Some("error sign!".into()),
            after_placing: false,
            api_key: Some(bad_key),
        })
        .unwrap();
    let refused = p
        .signal(
            &bad_token,
            json!({ "action": "buy", "quantity": "1", "id": "l4" }),
        )
        .await;
    assert_eq!(p.settled(&refused).await, "done");
    // Let the confirmations and reconciliation log what they log: wait until no order is open and
    // every filled order has its fills recorded.
    let db = p.db().await;
    harness::wait_for(Duration::from_secs(20), || async {
        let row = db
            .query_one(
                "SELECT count(*) FILTER (WHERE status IN ('pending', 'submitted', 'new', 'partially_filled')) \
                      + count(*) FILTER (WHERE status = 'filled' \
                                           AND NOT EXISTS (SELECT 1 FROM fills f WHERE f.order_id = o.id)) \
                 FROM orders o",
                &[],
            )
            .await
            .unwrap();
        (row.get::<_, i64>(0) == 0).then_some(())
    })
    .await
    .expect("the orders were not all confirmed");

    let text = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    assert!(
        text.lines().count() > 100,
        "the capture saw too little to mean anything:\n{text}"
    );
    assert!(
        text.contains("executor running") && text.contains(&buy),
        "the capture missed the flow"
    );
    // The induced panic happened, went through the hook into the log, and the signal still settled.
    for expected in [
        "a thread panicked",
        "failpoint after_claim: induced panic",
        "a signal task panicked",
    ] {
        assert!(text.contains(expected), "{expected:?} not captured");
    }
    for secret in p.secrets.lock().unwrap().iter() {
        if let Some(line) = text.lines().find(|l| l.contains(secret.as_str())) {
            panic!(
                "a secret reached the logs: {}",
                line.replace(secret.as_str(), "<SECRET>")
            );
        }
    }
}
