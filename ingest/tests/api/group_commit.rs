//! Group commit seen from outside: webhooks that share a commit get the answers they would get
//! alone, and none of them before that commit has returned.

use std::time::Duration;

use humbex_ingest::webhook::signature::sign_x_signature;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{SECRET, TestApp, read, signal};

fn send(app: &TestApp, body: String) -> tokio::task::JoinHandle<(u16, Value)> {
    let request = app
        .http
        .post(app.url("/webhook"))
        .header("content-type", "application/json")
        .header(
            "x-signature",
            sign_x_signature(SECRET.as_bytes(), body.as_bytes()),
        )
        .body(body);
    tokio::spawn(async move { read(request.send().await.expect("webhook request")).await })
}

#[tokio::test]
async fn webhooks_held_at_commit_are_answered_only_after_it_and_each_as_if_alone() {
    let app = TestApp::spawn().await;
    let (_, token) = app.active_user("g@example.com").await;
    let (status, idle) = app
        .admin(
            Method::POST,
            "/admin/users",
            Some(json!({ "email": "idle@example.com" })),
        )
        .await;
    assert_eq!(status, 201, "{idle}");
    let idle_token = idle["webhook_token"].as_str().unwrap().to_owned();

    // A deferred trigger runs inside every COMMIT that inserted a signal and waits for an advisory
    // lock the test holds: no such COMMIT can return until the test lets it.
    let sql = app.db().await;
    sql.batch_execute(
        "CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NULL; END $$; \
         CREATE CONSTRAINT TRIGGER gate AFTER INSERT ON signals \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION gate();",
    )
    .await
    .unwrap();
    let keeper = app.db().await;
    keeper
        .execute("SELECT pg_advisory_lock(4242)", &[])
        .await
        .unwrap();

    let mut new = Vec::new();
    for n in 0..6 {
        new.push(send(&app, signal(&token, json!({ "id": format!("new-{n}") }))));
    }
    let same: Vec<_> = (0..3)
        .map(|_| send(&app, signal(&token, json!({ "id": "same" }))))
        .collect();
    let refused = send(&app, signal(&idle_token, json!({ "id": "r" })));

    tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let waiting: i64 = sql
                .query_one(
                    "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                    &[],
                )
                .await
                .unwrap()
                .get("n");
            if waiting > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("a commit reaches the gate");
    let all = || new.iter().chain(&same).chain(std::iter::once(&refused));
    assert!(
        all().all(|h| !h.is_finished()),
        "a webhook was answered while its commit was still waiting"
    );
    assert_eq!(app.count("SELECT count(*) FROM signals").await, 0);
    keeper
        .execute("SELECT pg_advisory_unlock(4242)", &[])
        .await
        .unwrap();

    for h in new {
        let (status, answer) = h.await.unwrap();
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["duplicate"], false);
    }
    let mut same_answers = Vec::new();
    for h in same {
        same_answers.push(h.await.unwrap());
    }
    let accepted: Vec<_> = same_answers.iter().filter(|(s, _)| *s == 202).collect();
    assert_eq!(accepted.len(), 1, "{same_answers:?}");
    let id = &accepted[0].1["signal_id"];
    assert!(
        same_answers
            .iter()
            .filter(|(s, _)| *s == 200)
            .all(|(_, a)| &a["signal_id"] == id && a["duplicate"] == true),
        "{same_answers:?}"
    );
    assert_eq!(same_answers.iter().filter(|(s, _)| *s == 200).count(), 2);
    let (status, answer) = refused.await.unwrap();
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"], "subscription_inactive");
    assert_eq!(
        app.count("SELECT count(*) FROM signals WHERE status = 'received'")
            .await,
        7
    );
    assert_eq!(
        app.count("SELECT count(*) FROM signals WHERE status = 'rejected'")
            .await,
        1
    );
}
