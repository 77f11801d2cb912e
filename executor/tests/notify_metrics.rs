//! `humbex_notifications_total` as the process's registry counts it, in a test binary of its own:
//! the registry is global, and the notification tests running beside it would move the same series.

#[allow(dead_code)]
#[path = "notify/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "notify/smtp.rs"]
mod smtp;

use std::time::Duration;

use harness::World;
use humbex_shared::metrics::metrics;

fn webhook(outcome: &str) -> f64 {
    let series = format!(r#"humbex_notifications_total{{channel="webhook",outcome="{outcome}"}} "#);
    metrics()
        .encode()
        .lines()
        .find_map(|line| line.strip_prefix(&series)?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_retry_that_used_the_last_attempt_is_counted_failed_not_retried() {
    let w = World::start().await;
    w.stand_in.fail_next("/user-hook", 1000);
    w.fill_one().await;
    let (retried, failed) = (webhook("retried"), webhook("failed"));
    let settings = humbex_executor::notify::NotifierSettings {
        max_attempts: 3,
        ..w.settings()
    };
    let task = w.spawn(settings);
    let done = w.settled(3, Duration::from_secs(30)).await;
    task.abort();
    assert_eq!(done.get("dead"), Some(&1), "{done:?}");
    assert_eq!(w.stand_in.requests("/user-hook").len(), 3);
    assert_eq!(webhook("retried") - retried, 2.0, "the first two attempts");
    assert_eq!(
        webhook("failed") - failed,
        1.0,
        "the last one gave the delivery up"
    );
}
