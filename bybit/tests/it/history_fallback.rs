//! The paper exchange always finds closed orders on /v5/order/realtime, so the fallback to
//! /v5/order/history (what Bybit needs after a service restart) is proven against a tiny stub.

use humbex_bybit::{BybitRest, Credentials, OrderLinkId, OrderStatus};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const EMPTY: &str = r#"{"retCode":0,"retMsg":"OK","result":{"category":"linear","list":[],"nextPageCursor":""},"retExtInfo":{},"time":1}"#;

fn history_body() -> String {
    humbex_bybit::test_data::fixture("docs_order_realtime.json")
}

#[tokio::test]
async fn order_missing_from_realtime_is_found_in_history() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let mut paths = Vec::new();
        for _ in 0..2 {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "client closed early");
                head.extend_from_slice(&buf[..n]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let path = head.split_whitespace().nth(1).unwrap().to_string();
            let body = if path.starts_with("/v5/order/history") {
                history_body()
            } else {
                EMPTY.to_string()
            };
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
            paths.push(path);
        }
        paths
    });

    let rest = BybitRest::new(base).unwrap();
    let creds = Credentials::new("k", SecretString::from("s"));
    let id = OrderLinkId::parse("bot-0001").unwrap();
    let order = rest
        .get_order_by_link_id(&creds, "AVAXUSDT", &id)
        .await
        .unwrap()
        .value
        .expect("found in history");
    assert_eq!(order.order_status, OrderStatus::Filled);

    let paths = tokio::time::timeout(std::time::Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert!(paths[0].starts_with("/v5/order/realtime?category=linear&symbol=AVAXUSDT&orderLinkId=bot-0001"));
    assert!(paths[1].starts_with("/v5/order/history?category=linear&symbol=AVAXUSDT&orderLinkId=bot-0001"));
}
