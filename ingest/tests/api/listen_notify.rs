//! The NOTIFY contract the executor relies on: a stored signal is announced on humbex_signals with
//! its id as payload, in the same statement as the insert; a rejected one is never announced.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio_postgres::AsyncMessage;

use crate::harness::{TestApp, signal};

#[tokio::test]
async fn listen_receives_stored_signals_and_nothing_for_rejected_ones() {
    let app = TestApp::spawn().await;
    let (_, token) = app.active_user("listen@example.com").await;
    let (status, rejected_user) = app
        .admin(
            reqwest::Method::POST,
            "/admin/users",
            Some(json!({ "email": "nosub@example.com" })),
        )
        .await;
    assert_eq!(status, 201);

    // A dedicated connection driven by poll_message: pooled connections drop notifications.
    let pg = app.db.as_ref().unwrap().url.pg_config();
    let (client, mut connection) = pg.connect().await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message {
                let _ = tx.send((n.channel().to_owned(), n.payload().to_owned()));
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {}", humbex_shared::channels::SIGNALS))
        .await
        .unwrap();

    // First a refused signal (no subscription), then an accepted one. Notifications arrive in
    // commit order, so if the first one we get is the accepted signal's, the refused one sent none.
    let (status, _) = app
        .signed(&signal(
            rejected_user["webhook_token"].as_str().unwrap(),
            json!({}),
        ))
        .await;
    assert_eq!(status, 403);
    let (status, accepted) = app.signed(&signal(&token, json!({ "id": "n-1" }))).await;
    assert_eq!(status, 202);
    let (channel, payload) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a notification within 5 s")
        .unwrap();
    assert_eq!(channel, humbex_shared::channels::SIGNALS);
    assert_eq!(payload, accepted["signal_id"].as_str().unwrap());

    // A duplicate is not announced again: the next notification is the next new signal's.
    let (status, _) = app.signed(&signal(&token, json!({ "id": "n-1" }))).await;
    assert_eq!(status, 200);
    let (status, second) = app.signed(&signal(&token, json!({ "id": "n-2" }))).await;
    assert_eq!(status, 202);
    let (_, payload) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(payload, second["signal_id"].as_str().unwrap());
}
