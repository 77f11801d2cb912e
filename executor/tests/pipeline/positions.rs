//! The `positions` mirror across a gap in the private stream: a position the exchange closed while
//! no stream could hear it (here a liquidation while the executor was down) is flat after the
//! catch-up of the next subscription, not left open forever (`positions::FLATTEN_UNLISTED`).

use rust_decimal::Decimal;
use serde_json::json;

use crate::harness::{Pipeline, wait_for};
use crate::v2::{d, position, send};

/// HUMBEX's row for the user's AVAXUSDT position (one account): its size.
async fn recorded_size(p: &Pipeline, user: &str) -> Option<Decimal> {
    p.db()
        .await
        .query_opt(
            "SELECT size FROM positions WHERE user_id = $1 AND symbol = 'AVAXUSDT'",
            &[&user.parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap()
        .map(|r| r.get("size"))
}

#[tokio::test]
async fn a_position_closed_while_the_stream_was_down_is_flat_after_the_catch_up() {
    let mut p = Pipeline::start(1).await;
    let (user, token, key) = p
        .trader("gap@example.com", json!({ "margin_mode": "isolated" }), "1000")
        .await;
    send(
        &p,
        &token,
        json!({ "action": "buy", "quantity": "1", "id": "gap" }),
    )
    .await;
    assert_eq!(position(&p, &key), d("1"));
    let open = wait_for(std::time::Duration::from_secs(10), || async {
        (recorded_size(&p, &user).await == Some(d("1"))).then_some(())
    })
    .await;
    assert!(open.is_some(), "the open position is recorded");

    // The executor dies; while no stream listens, the exchange liquidates the position
    // (isolated at 10x from 25: liquidated at 22.625). No push reaches anyone.
    p.kill_executor(0);
    let closed = wait_for(std::time::Duration::from_secs(10), || async {
        (p.paper.exchange().private_connections(&key) == 0).then_some(())
    })
    .await;
    assert!(closed.is_some(), "the stream closed with its executor");
    p.paper.exchange().set_price("AVAXUSDT", d("22.6")).unwrap();
    assert_eq!(position(&p, &key), d("0"));
    assert_eq!(
        recorded_size(&p, &user).await,
        Some(d("1")),
        "nothing heard it yet"
    );

    // A new executor takes the account; its catch-up lists no open position: flat here too.
    p.start_executor();
    let flat = wait_for(std::time::Duration::from_secs(30), || async {
        (recorded_size(&p, &user).await == Some(Decimal::ZERO)).then_some(())
    })
    .await;
    assert!(
        flat.is_some(),
        "the position is still recorded as {:?}",
        recorded_size(&p, &user).await
    );
}
