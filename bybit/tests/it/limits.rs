//! What the client refuses from a server that is not behaving like Bybit: redirects are not
//! followed, over-long REST bodies are not read, over-long WebSocket messages end the session.

use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use humbex_bybit::{
    BybitError, BybitRest, BybitRestConfig, Credentials, PrivateStream, PrivateStreamConfig, StreamEvent,
};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// A one-shot HTTP server on 127.0.0.1 that reads one request and writes `response` as is.
async fn answer_once(response: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).await.unwrap();
            if n == 0 {
                return;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let _ = conn.write_all(&response).await;
        let _ = conn.shutdown().await;
    });
    url
}

fn client(url: &str) -> BybitRest {
    let mut config = BybitRestConfig::new(url);
    config.request_timeout = Duration::from_secs(2);
    BybitRest::with_config(config).unwrap()
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let elsewhere = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let location = format!("http://{}/v5/market/time", elsewhere.local_addr().unwrap());
    let url = answer_once(
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
    )
    .await;
    let result = client(&url).server_time().await;
    assert!(result.is_err(), "a 302 is not an answer: {result:?}");
    assert!(
        elsewhere.accept().now_or_never().is_none(),
        "the client connected to the redirect's target"
    );
}

/// `server_time` against a server whose answer is a valid envelope padded to `len` bytes, with or
/// without a Content-Length header.
async fn server_time_with_body(len: usize, announced: bool) -> Result<(), BybitError> {
    let mut body =
        br#"{"retCode":0,"retMsg":"OK","result":{"timeSecond":"1","timeNano":"1"},"time":1}"#.to_vec();
    body.resize(len, b' ');
    let length = if announced {
        format!("Content-Length: {len}\r\n")
    } else {
        String::new()
    };
    let mut response =
        format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}Connection: close\r\n\r\n")
            .into_bytes();
    response.extend(body);
    client(&answer_once(response).await)
        .server_time()
        .await
        .map(|_| ())
}

#[tokio::test]
async fn an_over_long_body_is_not_read() {
    let cap = humbex_bybit::rest::MAX_RESPONSE_BYTES;
    // Announced by Content-Length, or not: then the body just keeps coming until the connection closes.
    for announced in [true, false] {
        let result = server_time_with_body(cap + 1, announced).await;
        assert!(
            matches!(&result, Err(BybitError::Ambiguous { reason }) if reason.contains("longer than")),
            "announced {announced}: {result:?}"
        );
    }
    // Up to the cap is still read.
    server_time_with_body(cap, false).await.unwrap();
}

#[tokio::test]
async fn an_over_long_websocket_message_ends_the_session() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v5/private", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(conn).await.unwrap();
        for op in ["auth", "subscribe"] {
            let _request = ws.next().await;
            let reply = format!(r#"{{"op":"{op}","req_id":"{op}","success":true,"ret_msg":""}}"#);
            ws.send(Message::text(reply)).await.unwrap();
        }
        // A valid push padded past the cap.
        let mut push = r#"{"topic":"order","data":[]}"#.to_owned();
        push.push_str(&" ".repeat(humbex_bybit::ws::MAX_MESSAGE_BYTES));
        let _ = ws.send(Message::text(push)).await;
        // Hold the connection open: only the client's limit may end this session.
        let _ = ws.next().await;
    });
    let mut config = PrivateStreamConfig::new(url, Credentials::new("key", SecretString::from("secret")));
    config.reconnect_initial_delay = Duration::from_secs(60);
    let (handle, mut events) = PrivateStream::spawn(config);
    let first = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .unwrap();
    assert!(matches!(first, Some(StreamEvent::Connected { .. })), "{first:?}");
    let second = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .unwrap();
    match second {
        Some(StreamEvent::Disconnected { reason }) => {
            assert!(reason.contains("too long"), "{reason}");
        }
        other => panic!("expected the session to end, got {other:?}"),
    }
    handle.shutdown().await;
}
