//! A claim whose lease ran out before it sent (its sender paced or stalled past it) and whose rows
//! a later claim took over sends nothing: each delivery goes out once, by the later claim.

use std::time::Duration;

use humbex_executor::notify::NotifierSettings;

use crate::harness::{World, wait_for};

#[tokio::test]
async fn a_claim_overtaken_after_its_lease_ran_out_sends_nothing() {
    let w = World::start().await;
    let db = w.db().await;
    w.fill_one().await;
    // One sender (one sender id) with a short lease, driven step by step.
    let notifier = w.notifier(NotifierSettings {
        lease: Duration::from_millis(200),
        ..w.settings()
    });
    notifier.fan_out().await.unwrap();
    let first = notifier.claim().await.unwrap();
    assert_eq!(first.len(), 3, "telegram, webhook and email: {first:?}");

    // The first claim's lease runs out before it sends; the next claim takes the rows over.
    let expired = wait_for(Duration::from_secs(10), || async {
        let row = db
            .query_one(
                "SELECT bool_and(claimed_until < now()) AS expired FROM notification_deliveries",
                &[],
            )
            .await
            .unwrap();
        row.get::<_, Option<bool>>("expired")
            .unwrap_or(false)
            .then_some(())
    })
    .await;
    assert!(expired.is_some());
    let second = notifier.claim().await.unwrap();
    assert_eq!(second.len(), 3);
    for group in second {
        notifier.clone().send_group(group).await;
    }
    // The overtaken claim, late: it must not send again what the second one sent.
    for group in first {
        notifier.clone().send_group(group).await;
    }
    assert_eq!(w.stand_in.requests("/sendMessage").len(), 1);
    assert_eq!(w.stand_in.requests("/user-hook").len(), 1);
    assert_eq!(w.smtp.messages().len(), 1);
    let done = w.deliveries().await;
    assert_eq!(done.get("delivered"), Some(&3), "{done:?}");
}
