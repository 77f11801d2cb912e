//! The public linear stream `/v5/public/linear`, tickers only: `tickers.<SYMBOL>` subscriptions get a
//! snapshot at once and another on every price change (Bybit sends deltas after the first snapshot;
//! a full snapshot each time is a valid subset of what a client must handle). No auth.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use poem::web::Data;
use poem::web::websocket::{Message, WebSocket};
use poem::{IntoResponse, handler};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::exchange::PaperExchange;

#[handler]
pub fn public_linear_ws(ws: WebSocket, Data(exchange): Data<&Arc<PaperExchange>>) -> impl IntoResponse {
    let exchange = exchange.clone();
    ws.on_upgrade(move |socket| async move {
        let (mut sink, mut stream) = socket.split();
        let mut prices = exchange.subscribe_prices();
        let mut drops = exchange.subscribe_drops();
        let conn_id = format!("paper-pub-{}", uuid::Uuid::new_v4().simple());
        let mut symbols: HashSet<String> = HashSet::new();
        let mut cs = 0u64;
        loop {
            let outgoing: Vec<Value> = tokio::select! {
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Text(text))) => handle(&exchange, &text, &conn_id, &mut symbols, &mut cs),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => Vec::new(),
                },
                moved = prices.recv() => match moved {
                    Ok(symbol) if symbols.contains(&symbol) => ticker(&exchange, &symbol, &mut cs).into_iter().collect(),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => Vec::new(),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                dropped = drops.recv() => match dropped {
                    Ok(order) if order.api_key.is_none() => return,
                    _ => Vec::new(),
                },
            };
            for message in outgoing {
                if sink.send(Message::Text(message.to_string())).await.is_err() {
                    return;
                }
            }
        }
        let _ = sink.close().await;
    })
}

fn handle(
    exchange: &PaperExchange,
    text: &str,
    conn_id: &str,
    symbols: &mut HashSet<String>,
    cs: &mut u64,
) -> Vec<Value> {
    let request: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let op = request
        .get("op")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let req_id = request.get("req_id").cloned().unwrap_or(json!(""));
    let reply = |success: bool, ret_msg: String, op: &str| json!({"success": success, "ret_msg": ret_msg, "conn_id": conn_id, "req_id": req_id, "op": op});
    let args: Vec<String> = request
        .get("args")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    match op.as_str() {
        // The public streams answer a ping in the envelope of a subscribe reply.
        "ping" => vec![reply(true, "pong".into(), "ping")],
        "subscribe" => {
            let listed = |topic: &String| {
                topic
                    .strip_prefix("tickers.")
                    .filter(|s| exchange.price(s).is_some())
                    .map(str::to_string)
            };
            if let Some(bad) = args.iter().find(|t| listed(t).is_none()) {
                return vec![reply(
                    false,
                    format!("error:handler not found,topic:{bad}"),
                    "subscribe",
                )];
            }
            let mut out = vec![reply(true, String::new(), "subscribe")];
            for topic in &args {
                let symbol = listed(topic).expect("checked above");
                out.extend(ticker(exchange, &symbol, cs));
                symbols.insert(symbol);
            }
            out
        }
        "unsubscribe" => {
            for topic in &args {
                if let Some(symbol) = topic.strip_prefix("tickers.") {
                    symbols.remove(symbol);
                }
            }
            vec![reply(true, String::new(), "unsubscribe")]
        }
        _ => vec![reply(false, format!("unknown op {op}"), &op)],
    }
}

fn ticker(exchange: &PaperExchange, symbol: &str, cs: &mut u64) -> Option<Value> {
    let data = exchange.lock().instruments.get(symbol)?.ticker_json();
    *cs += 1;
    Some(json!({
        "topic": format!("tickers.{symbol}"),
        "type": "snapshot",
        "data": data,
        "cs": *cs,
        "ts": Utc::now().timestamp_millis(),
    }))
}
