//! docs/security.md#ip-binding-and-the-periodic-re-check: the periodic key re-check. A key that was
//! fine when added and is later widened on the exchange (here: Withdraw added through the paper
//! exchange's control API) is marked unusable by the executor's re-check, and no further order is
//! sent with it.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Pipeline, wait_for};

#[tokio::test]
async fn a_key_widened_after_registration_is_disabled_and_never_used_again() {
    let mut p = Pipeline::start(0).await;
    let (user, token, api_key) = p.trader("recheck@example.com", json!({}), "10000").await;
    let listed = |keys: serde_json::Value| keys.as_array().unwrap()[0].clone();
    let usable = listed(
        p.admin(
            reqwest::Method::GET,
            &format!("/admin/users/{user}/api-keys"),
            json!(null),
        )
        .await,
    );
    assert!(
        usable["unusable_at"].is_null() && usable["unusable_reason"].is_null(),
        "{usable}"
    );
    let db = p.db().await;
    let first_check: chrono::DateTime<chrono::Utc> = db
        .query_one("SELECT permissions_checked_at FROM api_keys", &[])
        .await
        .unwrap()
        .get(0);
    // A short interval instead of a day; the waits below are on conditions.
    p.start_executor_with(|s| s.key_recheck_interval = Duration::from_millis(200));

    // A re-check of the unchanged key leaves it usable (and records when it was checked) ...
    wait_for(Duration::from_secs(10), || async {
        let row = db
            .query_one(
                "SELECT permissions_checked_at, unusable_at IS NULL FROM api_keys",
                &[],
            )
            .await
            .unwrap();
        let checked: chrono::DateTime<chrono::Utc> = row.get(0);
        let usable: bool = row.get(1);
        assert!(usable, "an unchanged key must stay usable");
        (checked > first_check).then_some(())
    })
    .await
    .expect("a re-check ran");
    // ... and it trades.
    let signal = p
        .signal(
            &token,
            json!({ "action": "buy", "quantity": "1", "id": "recheck-1" }),
        )
        .await;
    assert_eq!(p.settled(&signal).await, "done");
    assert_eq!(p.exchange_orders(&api_key).len(), 1);

    // The user adds Withdraw on the exchange's site.
    let resp = p
        .http
        .patch(format!("{}/paper/accounts/{api_key}", p.paper.base_url()))
        .json(&json!({ "permissions": {
            "ContractTrade": ["Order", "Position"],
            "Wallet": ["Withdraw"]
        } }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    let reason: String = wait_for(Duration::from_secs(10), || async {
        db.query_one(
            "SELECT unusable_reason FROM api_keys WHERE unusable_at IS NOT NULL",
            &[],
        )
        .await
        .ok()
        .map(|r| r.get(0))
    })
    .await
    .expect("the re-check marked the key unusable");
    assert!(reason.contains("Wallet:Withdraw"), "{reason}");
    assert!(!reason.contains(&api_key), "{reason}");
    // The admin listing shows what the executor decided, beside revoked_at.
    let disabled = listed(
        p.admin(
            reqwest::Method::GET,
            &format!("/admin/users/{user}/api-keys"),
            json!(null),
        )
        .await,
    );
    assert_eq!(disabled["unusable_reason"], reason.as_str(), "{disabled}");
    assert!(disabled["unusable_at"].is_string(), "{disabled}");
    assert!(disabled["revoked_at"].is_null(), "{disabled}");

    // The next signal is settled without anything reaching the exchange.
    let signal = p
        .signal(
            &token,
            json!({ "action": "sell", "quantity": "1", "id": "recheck-2" }),
        )
        .await;
    p.settled(&signal).await;
    let orders = p.orders_of(&signal).await;
    assert!(
        orders
            .iter()
            .all(|(_, status, _, _)| status != "submitted" && status != "filled"),
        "{orders:?}"
    );
    assert_eq!(
        p.exchange_orders(&api_key).len(),
        1,
        "no order sent with the disabled key"
    );
}
