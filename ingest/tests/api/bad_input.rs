//! The negative-input table (docs/security.md#strict-input) over both webhook routes: every row a
//! 4xx with a JSON error naming the problem, never a 5xx, and never a stored signal.

use serde_json::json;

use crate::harness::{TestApp, read, signal};

#[tokio::test]
async fn every_bad_body_is_a_4xx_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let (_, token) = app.active_user("bad@example.com").await;
    let t = token.as_str();
    let nested = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let cases: Vec<(String, u16, &str)> = vec![
        ("not json".into(), 400, "invalid_body"),
        (String::new(), 400, "invalid_body"),
        (format!("\u{feff}{}", signal(t, json!({}))), 400, "invalid_body"),
        (nested, 400, "invalid_body"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantiy":1}}"#), 400, "invalid_body"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":1,"quantity":1000}}"#), 400, "invalid_body"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":NaN}}"#), 400, "invalid_body"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":1e400}}"#), 400, "invalid_field"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":1,"comment":"\ud800"}}"#), 400, "invalid_body"),
        (format!(r#"{{"token":"{t}","action":"hodl","symbol":"AVAXUSDT","quantity":1}}"#), 400, "invalid_field"),
        (format!(r#"{{"token":"{t}","action":1,"symbol":"AVAXUSDT","quantity":1}}"#), 400, "invalid_body"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":true,"quantity":1}}"#), 400, "invalid_body"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":1,"id":7}}"#), 400, "invalid_body"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":1,"comment":[]}}"#), 400, "invalid_body"),
        (r#"{"token":1,"action":"buy","symbol":"AVAXUSDT","quantity":1}"#.into(), 400, "invalid_body"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"ETHUSDT","quantity":1}}"#), 400, "invalid_field"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"BTC\u0000USDT","quantity":1}}"#), 400, "invalid_field"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"\u202eAVAXUSDT","quantity":1}}"#), 400, "invalid_field"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDТ","quantity":1}}"#), 400, "invalid_field"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT"}}"#), 400, "invalid_field"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":0}}"#), 400, "invalid_field"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":-1}}"#), 400, "invalid_field"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":-0.0}}"#), 400, "invalid_field"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":"1e3"}}"#), 400, "invalid_field"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":123456789012345678901234567890}}"#), 400, "invalid_field"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":"0.1234567890123456789012345678901"}}"#), 400, "invalid_field"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":"79228162514264337593543950336"}}"#), 400, "invalid_field"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":1,"price":-5}}"#), 400, "invalid_field"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":1,"id":"a\u0000b"}}"#), 400, "invalid_field"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":1,"comment":"\u0000"}}"#), 400, "invalid_field"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":1,"timestamp":"soon"}}"#), 400, "invalid_field"),
        (format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":1,"timestamp":1}}"#), 400, "stale_signal"),
        (format!(r#"{{"token":"{t}x","action":"buy","symbol":"AVAXUSDT","quantity":1}}"#), 401, "invalid_token"),
        (r#"{"token":"hbxu_000000000000000000000000000000000","action":"buy","symbol":"AVAXUSDT","quantity":1}"#.into(), 401, "invalid_token"),
        (r#"{"action":"buy","symbol":"AVAXUSDT","quantity":1}"#.into(), 401, "invalid_token"),
    ];
    for (body, expected, code) in &cases {
        for route in ["signed", "tradingview"] {
            let (status, answer) = if route == "signed" {
                app.signed(body).await
            } else {
                app.tradingview(body).await
            };
            assert_eq!(status, *expected, "{route} {body:?}: {answer}");
            assert_eq!(answer["error"], *code, "{route} {body:?}: {answer}");
            assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
    // Field errors name the field.
    let (_, answer) = app
        .signed(&format!(
            r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":0}}"#
        ))
        .await;
    assert!(
        answer["message"].as_str().unwrap().starts_with("quantity:"),
        "{answer}"
    );
    let (_, answer) = app
        .signed(&format!(
            r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantiy":1}}"#
        ))
        .await;
    assert!(
        answer["message"].as_str().unwrap().contains("quantiy"),
        "{answer}"
    );
    // A value of the wrong type names its field, without serde's line and column.
    for (body, message) in [
        (
            format!(r#"{{"token":"{t}","action":1,"symbol":"AVAXUSDT","quantity":1}}"#),
            "action: invalid type: integer `1`, expected a string",
        ),
        (
            format!(r#"{{"token":"{t}","action":"buy","symbol":"AVAXUSDT","quantity":1,"comment":[]}}"#),
            "comment: invalid type: sequence, expected a string",
        ),
    ] {
        for route in ["signed", "tradingview"] {
            let (_, answer) = if route == "signed" {
                app.signed(&body).await
            } else {
                app.tradingview(&body).await
            };
            assert_eq!(answer["message"], message, "{route} {body}");
        }
    }
    assert_eq!(app.count("SELECT count(*) FROM signals").await, 0);
}

#[tokio::test]
async fn body_size_and_content_type_limits() {
    let app = TestApp::spawn().await;
    let (_, token) = app.active_user("size@example.com").await;
    // Exactly 64 KiB is read (and refused only for what it says); one byte more is 413.
    let base = signal(&token, json!({ "comment": "" }));
    let pad = 64 * 1024 - base.len();
    let at_limit = base.replace(r#""comment":"""#, &format!(r#""comment":"{}""#, " ".repeat(pad)));
    assert_eq!(at_limit.len(), 64 * 1024);
    let (status, answer) = app.signed(&at_limit).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().starts_with("comment:"),
        "{answer}"
    );
    let over = format!("{at_limit} ");
    let (status, answer) = app.signed(&over).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"], "payload_too_large");
    // Chunked, without Content-Length.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        over.as_bytes().chunks(4096).map(|c| Ok(c.to_vec())).collect();
    let resp = app
        .http
        .post(app.url("/webhook/tradingview"))
        .header("content-type", "text/plain")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    for ct in [
        "application/x-www-form-urlencoded",
        "application/xml",
        "multipart/form-data; boundary=x",
    ] {
        let resp = app
            .http
            .post(app.url("/webhook/tradingview"))
            .header("content-type", ct)
            .body(signal(&token, json!({})))
            .send()
            .await
            .unwrap();
        let (status, answer) = read(resp).await;
        assert_eq!(status, 415, "{ct}: {answer}");
    }
    assert_eq!(app.count("SELECT count(*) FROM signals").await, 0);
}
