//! Slow and idle connections cannot hold the server: each must send its headers within
//! HTTP_HEADER_READ_TIMEOUT_SECS and is closed otherwise, and HTTP_MAX_CONNECTIONS bounds how many
//! are served at once. Every connection goes to 127.0.0.1 and ends by itself.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Options, TestApp};

/// Slow clients the test opens: 2,000, unless the open-files limit cannot hold them and the
/// server's end of each as well (the number used is printed).
fn slow_client_count() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        })
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    let count = 2000.min(soft.saturating_sub(512) / 2);
    if count < 2000 {
        eprintln!("open-files soft limit {soft}: using {count} slow clients instead of 2000");
    }
    count
}

async fn spawn(env: Vec<(&'static str, String)>) -> TestApp {
    TestApp::spawn_with(Options {
        env,
        ..Options::default()
    })
    .await
}

/// A slowloris client: the start of a request; `closed_within` then sends a header line every
/// pace, never the end.
async fn slow_client(addr: String) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(b"POST /webhook/tradingview HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await?;
    Ok(stream)
}

/// Whether the server closes `stream` within `limit` while we keep dribbling header bytes.
async fn closed_within(mut stream: TcpStream, pace: Duration, limit: Duration) -> bool {
    let attack = async {
        let mut ticks = tokio::time::interval(pace);
        let mut buf = [0u8; 256];
        loop {
            tokio::select! {
                read = stream.read(&mut buf) => match read {
                    // EOF, a reset, or the server's 408: the connection is over.
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                },
                _ = ticks.tick() => {
                    if stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    tokio::time::timeout(limit, attack).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_slow_clients_neither_stop_health_nor_stay_open() {
    let app = spawn(vec![("HTTP_HEADER_READ_TIMEOUT_SECS", "4".into())]).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let pace = Duration::from_millis(500);
    let count = slow_client_count();
    let mut slow = Vec::with_capacity(count);
    for _ in 0..count {
        slow.push(slow_client(addr.clone()).await.expect("connect to 127.0.0.1"));
    }
    // While all of them hold a connection, a health probe is answered at once.
    let started = std::time::Instant::now();
    let resp = app
        .http
        .get(app.url("/health"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .expect("/health answers within 1 s under the slow clients");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    // Each slow client, though it keeps sending header bytes, is closed once its 4 s are up.
    let closed = futures_util::future::join_all(
        slow.into_iter()
            .map(|s| closed_within(s, pace, Duration::from_secs(20))),
    )
    .await;
    let still_open = closed.iter().filter(|c| !**c).count();
    assert_eq!(
        still_open, 0,
        "{still_open} of {count} slow clients were still open after 20 s"
    );
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_a_slot_frees() {
    let app = spawn(vec![
        ("HTTP_MAX_CONNECTIONS", "20".into()),
        ("HTTP_HEADER_READ_TIMEOUT_SECS", "3".into()),
    ])
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    // All 20 slots are taken by silent clients: a 21st request is not served yet.
    let over = app
        .http
        .get(app.url("/health"))
        .timeout(Duration::from_millis(1000))
        .send()
        .await;
    assert!(over.is_err(), "served beyond the cap: {over:?}");
    // The header deadline frees the slots, and the next request is served.
    let resp = app
        .http
        .get(app.url("/health"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("served once the idle connections time out");
    assert_eq!(resp.status().as_u16(), 200);
    drop(idle);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_refused() {
    let app = spawn(vec![("HTTP_BODY_READ_TIMEOUT_SECS", "1".into())]).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    // Headers promise 100 bytes; 10 arrive, then nothing.
    stream
        .write_all(
            b"POST /webhook/tradingview HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n\
              Content-Length: 100\r\n\r\n{\"token\":\"",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the connection was still open 5 s after a 1 s body deadline"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("invalid_body"), "{text}");
}
