//! The private WebSocket `/v5/private`: auth op, ping/pong, (un)subscribe with a configurable ack
//! delay, and delivery of the account's pushes in Bybit's message shapes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use poem::web::Data;
use poem::web::websocket::{Message, WebSocket, WebSocketStream};
use poem::{IntoResponse, handler};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::engine::{Push, Topic};
use crate::exchange::PaperExchange;
use crate::signing;

/// Bybit closes private connections that send nothing for 10 minutes.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

#[handler]
pub fn private_ws(ws: WebSocket, Data(exchange): Data<&Arc<PaperExchange>>) -> impl IntoResponse {
    let exchange = exchange.clone();
    ws.on_upgrade(move |socket| async move {
        let mut connection = Connection::new(exchange);
        connection.run(socket).await;
    })
}

/// A subscribe request whose ack (and activation) waits for the configured delay.
struct PendingAck {
    topics: Vec<(Topic, String)>,
    ack: Value,
}

struct Connection {
    exchange: Arc<PaperExchange>,
    conn_id: String,
    api_key: Option<String>,
    pushes: Option<broadcast::Receiver<Arc<Push>>>,
    /// Topic → the exact name the client subscribed with (`order` or `order.linear`).
    subscriptions: HashMap<Topic, String>,
    acks_tx: mpsc::UnboundedSender<PendingAck>,
    acks_rx: mpsc::UnboundedReceiver<PendingAck>,
}

async fn next_push(
    pushes: &mut Option<broadcast::Receiver<Arc<Push>>>,
) -> Result<Arc<Push>, broadcast::error::RecvError> {
    match pushes {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn with_req_id(mut message: Value, request: &Value) -> Value {
    if let Some(req_id) = request.get("req_id") {
        message["req_id"] = req_id.clone();
    }
    message
}

impl Connection {
    fn new(exchange: Arc<PaperExchange>) -> Connection {
        let (acks_tx, acks_rx) = mpsc::unbounded_channel();
        Connection {
            exchange,
            conn_id: format!("paper-{}", uuid::Uuid::new_v4().simple()),
            api_key: None,
            pushes: None,
            subscriptions: HashMap::new(),
            acks_tx,
            acks_rx,
        }
    }

    async fn run(&mut self, socket: WebSocketStream) {
        let (mut sink, mut stream) = socket.split();
        let mut drops = self.exchange.subscribe_drops();
        loop {
            let outgoing: Vec<Message> = tokio::select! {
                incoming = tokio::time::timeout(IDLE_TIMEOUT, stream.next()) => {
                    let Ok(incoming) = incoming else { break };
                    match incoming {
                        Some(Ok(Message::Text(text))) => {
                            let mut replies = Vec::new();
                            self.handle_text(&text, &mut replies);
                            replies
                        }
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                        // Protocol pings are answered by the WebSocket layer itself.
                        Some(Ok(_)) => Vec::new(),
                    }
                }
                push = next_push(&mut self.pushes) => match push {
                    Ok(push) => self.render_push(&push).into_iter().collect(),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(conn_id = %self.conn_id, missed, "slow private WebSocket reader lost pushes");
                        Vec::new()
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                Some(pending) = self.acks_rx.recv() => {
                    for (topic, name) in pending.topics {
                        self.subscriptions.insert(topic, name);
                    }
                    vec![Message::Text(pending.ack.to_string())]
                }
                dropped = drops.recv() => match dropped {
                    Ok(order) if order.api_key.is_none() || order.api_key == self.api_key => {
                        // An abrupt drop (no close frame), like a lost network path.
                        return;
                    }
                    _ => Vec::new(),
                },
            };
            for message in outgoing {
                if sink.send(message).await.is_err() {
                    return;
                }
            }
        }
        let _ = sink.close().await;
    }

    fn reply(&self, body: Value) -> Message {
        let mut body = body;
        body["conn_id"] = Value::String(self.conn_id.clone());
        Message::Text(body.to_string())
    }

    fn handle_text(&mut self, text: &str, replies: &mut Vec<Message>) {
        let Ok(request) = serde_json::from_str::<Value>(text) else {
            replies.push(self.reply(json!({"success": false, "ret_msg": "Params Error", "op": ""})));
            return;
        };
        let op = request
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match op.as_str() {
            "ping" => {
                let pong = json!({"op": "pong", "args": [Utc::now().timestamp_millis().to_string()]});
                replies.push(self.reply(with_req_id(pong, &request)));
            }
            "auth" => {
                let outcome = self.authenticate(&request);
                let body = match &outcome {
                    Ok(()) => json!({"success": true, "ret_msg": "", "op": "auth"}),
                    Err(reason) => json!({"success": false, "ret_msg": reason, "op": "auth"}),
                };
                replies.push(self.reply(with_req_id(body, &request)));
            }
            "subscribe" => self.subscribe(&request, replies),
            "unsubscribe" => {
                for name in request
                    .get("args")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some((topic, _)) = name.as_str().and_then(parse_topic) {
                        self.subscriptions.remove(&topic);
                    }
                }
                let body = json!({"success": true, "ret_msg": "", "op": "unsubscribe"});
                replies.push(self.reply(with_req_id(body, &request)));
            }
            _ => {
                let body = json!({"success": false, "ret_msg": format!("unknown op {op}"), "op": op});
                replies.push(self.reply(with_req_id(body, &request)));
            }
        }
    }

    fn authenticate(&mut self, request: &Value) -> Result<(), &'static str> {
        if self.api_key.is_some() {
            return Err("Repeat auth");
        }
        let args = request
            .get("args")
            .and_then(Value::as_array)
            .ok_or("Params Error")?;
        let api_key = args.first().and_then(Value::as_str).ok_or("Params Error")?;
        // pybit sends expires as a number, ccxt as a string.
        let expires = match args.get(1) {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.parse::<i64>().ok(),
            _ => None,
        }
        .ok_or("Params Error")?;
        let signature = args.get(2).and_then(Value::as_str).ok_or("Params Error")?;
        if expires <= Utc::now().timestamp_millis() {
            return Err("Params Error");
        }
        let spec = self.exchange.account_spec(api_key).ok_or("API key is invalid.")?;
        if !signing::verify_ws_auth(&spec.api_secret, expires, signature) {
            return Err("Signature verification failed");
        }
        self.pushes = self.exchange.subscribe_pushes(api_key);
        self.api_key = Some(api_key.to_string());
        Ok(())
    }

    fn subscribe(&mut self, request: &Value, replies: &mut Vec<Message>) {
        let fail = |this: &Self, msg: String| {
            this.reply(with_req_id(
                json!({"success": false, "ret_msg": msg, "op": "subscribe"}),
                request,
            ))
        };
        if self.api_key.is_none() {
            replies.push(fail(self, "Request not authorized".into()));
            return;
        }
        let names: Vec<&str> = request
            .get("args")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if names.is_empty() {
            replies.push(fail(self, "Params Error".into()));
            return;
        }
        let mut topics = Vec::new();
        for name in &names {
            match parse_topic(name) {
                Some((topic, _)) => topics.push((topic, name.to_string())),
                None => {
                    replies.push(fail(self, format!("Invalid topic: {name}")));
                    return;
                }
            }
        }
        let all_in_one = names
            .iter()
            .any(|n| parse_topic(n).is_some_and(|(_, categorised)| !categorised));
        let categorised = names
            .iter()
            .any(|n| parse_topic(n).is_some_and(|(_, categorised)| categorised));
        if all_in_one && categorised {
            replies.push(fail(
                self,
                "Mixing all-in-one and categorised topics in one request is not allowed".into(),
            ));
            return;
        }
        let ack = with_req_id(
            json!({"success": true, "ret_msg": "", "op": "subscribe", "conn_id": self.conn_id}),
            request,
        );
        let delay = self.exchange.config.ws_subscribe_ack_delay;
        let acks = self.acks_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = acks.send(PendingAck { topics, ack });
        });
    }

    fn render_push(&self, push: &Push) -> Option<Message> {
        let name = self.subscriptions.get(&push.topic)?;
        let now = Utc::now().timestamp_millis();
        // Built by hand so the already serialised data is not parsed or copied again.
        let topic = Value::String(name.clone());
        let text = if push.topic == Topic::ExecutionFast {
            format!(
                r#"{{"topic":{topic},"creationTime":{now},"data":{}}}"#,
                push.data_json
            )
        } else {
            let id = uuid::Uuid::new_v4().simple();
            format!(
                r#"{{"id":"{id}","topic":{topic},"creationTime":{now},"data":{}}}"#,
                push.data_json
            )
        };
        Some(Message::Text(text))
    }
}

/// `order` → (Order, false); `order.linear` → (Order, true). Other categories are not simulated.
fn parse_topic(name: &str) -> Option<(Topic, bool)> {
    if let Some(topic) = Topic::from_base_name(name) {
        return Some((topic, false));
    }
    let base = name.strip_suffix(".linear")?;
    match Topic::from_base_name(base)? {
        Topic::Wallet => None,
        topic => Some((topic, true)),
    }
}
