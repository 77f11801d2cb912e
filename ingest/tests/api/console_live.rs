//! The console's event stream over real HTTP: a sign-out ends the session's streams at once (on
//! this ingest and on another sharing the database), and a browser that stops reading is dropped
//! while one that reads keeps its feed (docs/console.md#live-updates).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::console::{Browser, csrf_in, no_redirects};
use crate::harness::{ADMIN_TOKEN, Options, TestApp};

/// The bound on every wait below; the design's figure (a stream ends within a second of its
/// sign-out) is far inside it, so a failure here is a stream that did not end at all.
const PATIENCE: Duration = Duration::from_secs(10);

/// Wait until `n` console LISTEN connections on this database have run their LISTEN: before
/// that, a NOTIFY would reach nobody.
async fn wait_for_listeners(app: &TestApp, n: i64) {
    let db = app.db().await;
    let listening = async {
        loop {
            let count: i64 = db
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND application_name = $1 AND state = 'idle' AND query LIKE 'LISTEN%'",
                    &[&humbex_ingest::console::events::LISTEN_APPLICATION_NAME],
                )
                .await
                .unwrap()
                .get(0);
            if count >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PATIENCE, listening)
        .await
        .expect("the console's LISTEN connections did not start");
}

/// Wait until a condition on the running service holds.
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let holds = async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(PATIENCE, holds)
        .await
        .unwrap_or_else(|_| panic!("not within {PATIENCE:?}: {what}"));
}

type Chunks = std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// A signed-in browser's event stream, past its greeting.
async fn open_stream(browser: &mut Browser) -> Chunks {
    let resp = browser.get("/console/events").await;
    assert_eq!(resp.status(), 200);
    let mut chunks: Chunks = Box::pin(resp.bytes_stream());
    let hello = chunks.next().await.expect("a greeting").unwrap();
    assert!(std::str::from_utf8(&hello).unwrap().contains(": connected"));
    chunks
}

/// Whether the stream ends cleanly within [`PATIENCE`].
async fn ends(mut chunks: Chunks) -> bool {
    let drained = async {
        while let Some(chunk) = chunks.next().await {
            chunk.expect("the stream ends cleanly");
        }
    };
    tokio::time::timeout(PATIENCE, drained).await.is_ok()
}

/// The ids a reading browser has been told about, collected by a task of its own.
fn collect_ids(mut chunks: Chunks) -> Arc<Mutex<HashSet<String>>> {
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let into = seen.clone();
    tokio::spawn(async move {
        let mut text = String::new();
        while let Some(Ok(chunk)) = chunks.next().await {
            text.push_str(std::str::from_utf8(&chunk).unwrap());
            // Events end with a blank line; a chunk may hold several or part of one.
            while let Some(end) = text.find("\n\n") {
                let event: String = text.drain(..end + 2).collect();
                if let Some(id) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                    into.lock().unwrap().insert(id.to_owned());
                }
            }
        }
    });
    seen
}

/// NOTIFY as ingest's signal insert does, with a fresh id; returns it.
async fn announce(db: &tokio_postgres::Client) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    db.execute("SELECT pg_notify('humbex_signals', $1)", &[&id])
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn signing_out_ends_that_sessions_event_stream_at_once_and_no_other() {
    let app = TestApp::spawn().await;
    wait_for_listeners(&app, 1).await;
    let mut leaving = Browser::new(&app);
    assert_eq!(leaving.sign_in(ADMIN_TOKEN).await.status(), 303);
    let mut staying = Browser::new(&app);
    assert_eq!(staying.sign_in(ADMIN_TOKEN).await.status(), 303);
    let csrf = csrf_in(&leaving.get("/console").await.text().await.unwrap());
    let leaving_stream = open_stream(&mut leaving).await;
    let staying_seen = collect_ids(open_stream(&mut staying).await);
    wait_until("two streams open", || app.state.console_events.watchers() == 2).await;

    let out = leaving.post("/console/sign-out", &[("csrf_token", &csrf)]).await;
    assert_eq!(out.status(), 303);
    assert!(ends(leaving_stream).await, "the stream outlived its sign-out");

    // The other session's stream goes on.
    let db = app.db().await;
    let id = announce(&db).await;
    wait_until("the other session still hears signals", || {
        staying_seen.lock().unwrap().contains(&id)
    })
    .await;
    assert_eq!(app.state.console_events.watchers(), 1);
    // The signed-out cookie opens no new stream.
    assert_eq!(leaving.get("/console/events").await.status(), 401);
}

#[tokio::test]
async fn a_sign_out_on_another_ingest_ends_the_stream_here() {
    let here = TestApp::spawn().await;
    let url = here.db.as_ref().unwrap().url.expose_secret().to_owned();
    let there = TestApp::spawn_with(Options {
        database_url: Some(url),
        ..Default::default()
    })
    .await;
    wait_for_listeners(&here, 2).await;
    let mut browser = Browser::new(&here);
    assert_eq!(browser.sign_in(ADMIN_TOKEN).await.status(), 303);
    let stream = open_stream(&mut browser).await;

    // The same browser, its next request balanced onto the other ingest.
    let mut elsewhere = Browser {
        http: no_redirects(),
        base: there.base.clone(),
        cookies: browser.cookies.clone(),
    };
    let csrf = csrf_in(&elsewhere.get("/console").await.text().await.unwrap());
    let out = elsewhere
        .post("/console/sign-out", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(out.status(), 303);
    assert!(
        ends(stream).await,
        "the stream on the first ingest outlived a sign-out on the second"
    );
    assert_eq!(here.state.console_events.watchers(), 0);
}

#[tokio::test]
async fn a_browser_that_stops_reading_is_dropped_and_one_that_reads_keeps_its_feed() {
    let app = TestApp::spawn().await;
    wait_for_listeners(&app, 1).await;
    let mut browser = Browser::new(&app);
    assert_eq!(browser.sign_in(ADMIN_TOKEN).await.status(), 303);
    let seen = collect_ids(open_stream(&mut browser).await);

    // Another tab of the same session on a connection that never reads a byte, with a small
    // receive buffer so that its socket fills soon.
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = socket.connect(addr).await.unwrap();
    let request = format!(
        "GET /console/events HTTP/1.1\r\nHost: {addr}\r\nCookie: {}\r\nAccept: text/event-stream\r\n\r\n",
        browser.cookie_header()
    );
    stuck.write_all(request.as_bytes()).await.unwrap();
    let hub = app.state.console_events.clone();
    wait_until("both streams open", || hub.watchers() == 2).await;

    // Signals in bursts of 200 (each burst read by the reading browser before the next), until
    // the one that does not read is dropped.
    let db = app.db().await;
    let mut sent = 0;
    while hub.dropped_slow() == 0 {
        assert!(
            sent < 100_000,
            "{sent} events sent and the browser that reads nothing is still served"
        );
        db.execute(
            "SELECT pg_notify('humbex_signals', gen_random_uuid()::text) FROM generate_series(1, 200)",
            &[],
        )
        .await
        .unwrap();
        let marker = announce(&db).await;
        sent += 201;
        wait_until("the reading browser keeps up", || {
            seen.lock().unwrap().contains(&marker)
        })
        .await;
    }
    assert_eq!(hub.dropped_slow(), 1, "only the browser that does not read");
    assert_eq!(hub.watchers(), 1);
    let id = announce(&db).await;
    wait_until("the reading browser still hears signals", || {
        seen.lock().unwrap().contains(&id)
    })
    .await;

    // Its connection was closed: what the kernel still held, then the end.
    let closed = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stuck.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    assert!(
        tokio::time::timeout(PATIENCE, closed).await.is_ok(),
        "the connection of the browser that stopped reading is still open"
    );
    println!("dropped after {sent} events");
}

/// The last statement of this database's console LISTEN connection.
async fn console_listen_query(db: &tokio_postgres::Client) -> String {
    db.query_one(
        "SELECT query FROM pg_stat_activity WHERE datname = current_database() \
         AND application_name = $1",
        &[&humbex_ingest::console::events::LISTEN_APPLICATION_NAME],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn signals_and_orders_are_listened_to_only_while_a_browser_watches() {
    let app = TestApp::spawn().await;
    wait_for_listeners(&app, 1).await;
    let db = app.db().await;
    // Nobody watching: only sign-outs are listened to, so a signal's NOTIFY wakes nothing here.
    let idle = console_listen_query(&db).await;
    assert!(
        idle.contains("humbex_console_sessions") && !idle.contains("humbex_signals"),
        "{idle}"
    );

    let mut browser = Browser::new(&app);
    assert_eq!(browser.sign_in(ADMIN_TOKEN).await.status(), 303);
    // "connected" comes once the channels are listened to: the next signal reaches the browser.
    let mut chunks = open_stream(&mut browser).await;
    let watching = console_listen_query(&db).await;
    assert!(watching.contains("LISTEN humbex_signals"), "{watching}");
    let id = announce(&db).await;
    let heard = async {
        let mut text = String::new();
        while !text.contains(&id) {
            let chunk = chunks.next().await.expect("the stream goes on").unwrap();
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    };
    tokio::time::timeout(PATIENCE, heard)
        .await
        .expect("the watching browser did not hear the signal");

    // The browser leaves: after the linger, the channels are given up.
    drop(chunks);
    wait_until("the stream is gone", || app.state.console_events.watchers() == 0).await;
    let given_up = async {
        while !console_listen_query(&db).await.contains("UNLISTEN") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(PATIENCE * 2, given_up)
        .await
        .expect("the signal and order channels are still listened to with nobody watching");
}
